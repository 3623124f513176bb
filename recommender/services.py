"""Recommender services: the device catalog's host row, and the recommend stage."""

from django.db import transaction

from .host import HOST_DEVICE_NAME, read_host_specs
from .models import Device
from .rules import recommend


@transaction.atomic
def host_device_refresh() -> Device:
    """Create or update the This_Server device from the machine's current specs.

    is_active is left as an admin set it: a refresh re-reads hardware, it does not re-enable a hidden target.
    """
    specs = read_host_specs()
    device = Device.objects.filter(name=HOST_DEVICE_NAME).first() or Device(name=HOST_DEVICE_NAME)
    for field, value in specs.items():
        setattr(device, field, value)
    device.full_clean()  # the engines read here must pass the same rule an admin edit does
    device.save()
    return device


def host_device_setup() -> str:
    """`tango setup`'s step: this server, as it is now, in the catalog."""
    device = host_device_refresh()
    return f"Catalog: this server is {device.cpu_name or device.cpu_arch}, {device.cpu_cores} cores."


def recommend_preview(project) -> str:
    """Table 1's line for the project, shown on the pipeline panel before the stage runs."""
    device = project.device
    return f"Table 1: {recommend(device_name=device.name, tier=device.tier, task=project.task).reason}"


def recommend_stage(job, report) -> dict:
    """Pick the model for the project's device and task, explain why, and size it at the project's input."""
    project = job.project
    device = project.device
    report(f"Task: {project.get_task_display()}; dataset {project.dataset.name} "
           f"({project.dataset.num_images} images, {len(project.dataset.class_names)} classes).", progress=5)
    report(f"Target: {device.name} ({device.get_tier_display()} tier), {device.accelerator_name or 'CPU only'}, "
           f"engine {project.engine}, {project.precision}, input {project.input_size} px, "
           f"latency budget {project.latency_budget_ms:g} ms.", progress=15)
    choice = recommend(device_name=device.name, tier=device.tier, task=project.task)
    report(f"Rule: {choice.reason}", progress=40)
    result = {**choice.as_dict(), "device": device.name, "input_size": project.input_size,
              "latency_budget_ms": project.latency_budget_ms}
    if choice.family == "resnet":  # the zoo builds classification models; YOLO sizing comes with detection
        result.update(_size_on_device(choice.model, project, device, report))
    report(f"Recommended: {choice.model_label}.", progress=100)
    return result


def _size_on_device(model_name: str, project, device, report) -> dict:
    """Parameters and FLOPs at the project's input, and the roofline estimate on the target (not a measurement)."""
    from training.engine.zoo import build_model, model_profile

    from .estimate import estimate_latency_ms, fits_memory

    num_classes = max(2, len(project.dataset.class_names))
    profile = model_profile(build_model(model_name, num_classes=num_classes, input_size=project.input_size),
                            project.input_size)
    specs = {f: getattr(device, f) for f in ("peak_fp32_gflops", "peak_fp16_gflops", "peak_int8_gops",
                                              "memory_bandwidth_gbps")}
    latency = estimate_latency_ms(profile["flops"], profile["params"], specs, project.precision)
    memory = project.memory_limit_mb or device.memory_mb
    fits = fits_memory(profile["params"], project.precision, memory)
    verdict = "within" if latency <= project.latency_budget_ms else "over"
    report(f"{model_name}: {profile['params']:,} parameters, {profile['flops'] / 1e9:.2f} GFLOPs at "
           f"{project.input_size} px; roofline estimate ≈ {latency:.1f} ms on {device.name}, {verdict} the "
           f"{project.latency_budget_ms:g} ms budget; {'fits' if fits else 'does NOT fit'} in {memory} MiB.",
           progress=80)
    return {"params": profile["params"], "gflops": profile["flops"] / 1e9, "estimated_latency_ms": latency,
            "fits_memory": fits}
