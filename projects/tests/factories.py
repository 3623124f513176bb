"""Small builders for test rows: personas, a device, a dataset folder, a project."""

from django.contrib.auth import get_user_model

from projects.models import Dataset, Membership, Project, Role, Team
from recommender.models import Device


def user(username: str, **extra):
    return get_user_model().objects.create_user(username=username, password="pw-" + username, **extra)


def team_with(name: str, **members) -> Team:
    """team_with("Vision", alice="owner", bob="editor") — users are created when missing."""
    team = Team.objects.create(name=name)
    User = get_user_model()
    for username, role in members.items():
        member = User.objects.filter(username=username).first() or user(username)
        Membership.objects.create(team=team, user=member, role=Role(role))
    return team


# The paper's Table 1 models of the seeded rows this module may have to recreate (a transactional test empties the
# catalog the migrations seeded): the same values recommender/migrations/0004_seed_table1.py writes.
PAPER_MODELS = {"Jetson_Nano": ("YOLOv7-tiny", "ResNet-34"), "Odroid_N2": ("YOLOv7-tiny", "ResNet-34")}


def seeded_catalog() -> None:
    """Writes the catalog the migrations seed again: a transactional test's flush empties it."""
    from importlib import import_module

    from django.apps import apps

    for migration in ("0002_seed_devices", "0004_seed_table1"):
        seed = import_module(f"recommender.migrations.{migration}")
        (seed.seed_catalog if hasattr(seed, "seed_catalog") else seed.seed)(apps, None)


def device(name: str = "Jetson_Nano", **fields) -> Device:
    existing = Device.objects.filter(name=name).first()
    if existing:
        return existing
    detection, classification = PAPER_MODELS.get(name, ("", ""))
    defaults = dict(
        paper_detection_model=detection, paper_classification_model=classification,
        tier="on_device", cpu_arch="aarch64", cpu_cores=4, accelerator_kind="nvidia_gpu",
        accelerator_name="128-core Maxwell", peak_fp32_gflops=236, peak_fp16_gflops=472,
        memory_bandwidth_gbps=25.6, memory_mb=4096, os="JetPack 4.6",
        engines=["pytorch", "onnxruntime", "tensorrt", "tvm"], default_latency_budget_ms=100,
    )
    defaults.update(fields)
    return Device.objects.create(name=name, **defaults)


def benchmark_record(device: Device, *, model_name: str = "resnet18", latency_ms: float = 3.0, team=None):
    """A calibration record (a team's, with `team`) of the device, with made-up costs: no model is built."""
    from recommender.models import ArchitectureCost, BenchmarkRecord

    costs, _ = ArchitectureCost.objects.get_or_create(
        signature=f"test-{model_name}", defaults=dict(model_name=model_name, input_size=32, num_classes=2, costs={
            "params": 1, "flops": 1.0, "weight_bytes": 4.0, "activation_bytes": 4.0, "peak_activation_bytes": 4.0,
            "layers": 1, "ops": 1}))
    return BenchmarkRecord.objects.create(device=device, engine="onnxruntime", precision="fp32", architecture=costs,
                                          input_size=32, latency_ms=latency_ms, source="calibrate", team=team)


def dataset(team: Team, name: str = "digits", task: str = "classification", classes=("0", "1")) -> Dataset:
    return Dataset.objects.create(
        team=team, name=name, task=task, path=f"datasets/test/{name}", class_names=list(classes),
        num_images=10, sha256="0" * 64,
    )


def project(team: Team, name: str = "proj", **fields) -> Project:
    target = fields.pop("device", None) or device()
    data = fields.pop("dataset", None) or dataset(team, name=f"{name}-data")
    values = dict(task="classification", engine="onnxruntime", precision="fp32", input_size=32,
                  latency_budget_ms=100)
    values.update(fields)
    return Project.objects.create(team=team, name=name, device=target, dataset=data, **values)


def image_dataset(team: Team, name: str = "patterns", *, per_class: int = 30, val_per_class: int = 6,
                  size: int = 16) -> Dataset:
    """A real image folder tree (three drawn patterns) under MEDIA_ROOT, registered as a dataset."""
    from pathlib import Path

    from django.conf import settings

    from training.engine.synthetic import make_dataset

    relative = f"datasets/test/{name}-{team.pk}"
    root = Path(settings.MEDIA_ROOT) / relative
    classes = make_dataset(root, per_class=per_class, val_per_class=val_per_class, size=size)
    return Dataset.objects.create(team=team, name=name, task="classification", path=relative, class_names=classes,
                                  num_images=len(classes) * (per_class + val_per_class), sha256="1" * 64)


def training_project(team: Team, name: str = "patterns", *, epochs: int = 3, **options) -> Project:
    """A project on a small on-device target whose training takes seconds."""
    target = Device.objects.filter(name="Odroid_N2").first() or device(
        "Odroid_N2", accelerator_kind="mali_gpu", engines=["pytorch", "onnxruntime", "tvm", "tflite"])
    train = {"epochs": epochs, "batch_size": 8, "lr": 0.05, "patience": 0, **options}
    return project(team, name=name, device=target, dataset=image_dataset(team, name=f"{name}-data"),
                   input_size=16, options={"train": train, "model": "resnet18"})  # picked by hand: quick to train
