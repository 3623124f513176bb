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


def device(name: str = "Jetson_Nano", **fields) -> Device:
    existing = Device.objects.filter(name=name).first()
    if existing:
        return existing
    defaults = dict(
        tier="on_device", cpu_arch="aarch64", cpu_cores=4, accelerator_kind="nvidia_gpu",
        accelerator_name="128-core Maxwell", peak_fp32_gflops=236, peak_fp16_gflops=472,
        memory_bandwidth_gbps=25.6, memory_mb=4096, os="JetPack 4.6",
        engines=["pytorch", "onnxruntime", "tensorrt", "tvm"], default_latency_budget_ms=100,
    )
    defaults.update(fields)
    return Device.objects.create(name=name, **defaults)


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
