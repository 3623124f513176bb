"""Fixtures for the page tests, imported with `from .pages_fixtures import *` (a conftest.py belongs to the API tests).

The story: team Vision, where alice owns, bob edits and carol only looks. Dave owns his own team, Elsewhere, and
must not learn that Vision's rows exist. Two catalog devices: a Jetson (NVIDIA, TensorRT) and an Odroid (Mali GPU,
no TensorRT), so the wizard has a device that cannot run an engine.
"""

import pytest
from django.contrib.auth import get_user_model

from projects.jobs.models import Job, JobStatus
from projects.tests import factories

__all__ = [
    "fast_passwords", "team", "owner", "editor", "viewer", "outsider", "outsider_team", "persona",
    "jetson", "odroid", "digits", "cars", "project", "htmx", "STATS",
]

# The shape the dataset validator writes (projects.datasets.report.DatasetReport.as_dict).
STATS = {
    "task": "classification",
    "split_generated": False,
    "split_counts": {"train": 90, "val": 20},
    "class_counts": {"cat": {"train": 50, "val": 10}, "dog": {"train": 40, "val": 10}},
    "image_width": {"min": 28, "max": 640, "mean": 212.5},
    "image_height": {"min": 28, "max": 480, "mean": 190.0},
    "common_sizes": [{"width": 224, "height": 224, "count": 80}, {"width": 640, "height": 480, "count": 30}],
    "modes": {"RGB": 110},
}


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    # The personas get real passwords; the default PBKDF2 makes each one cost ~1 s, which dominates these tests.
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def team(db):
    return factories.team_with("Vision", alice="owner", bob="editor", carol="viewer")


def _user(name):
    return get_user_model().objects.get(username=name)


@pytest.fixture
def owner(team):
    return _user("alice")


@pytest.fixture
def editor(team):
    return _user("bob")


@pytest.fixture
def viewer(team):
    return _user("carol")


@pytest.fixture
def outsider_team(db):
    return factories.team_with("Elsewhere", dave="owner")


@pytest.fixture
def outsider(outsider_team):
    return _user("dave")


@pytest.fixture
def persona(owner, editor, viewer, outsider):
    """The persona by role name; "anonymous" is None (the client stays logged out)."""
    return {"owner": owner, "editor": editor, "viewer": viewer, "outsider": outsider, "anonymous": None}.get


@pytest.fixture
def jetson(db):
    return factories.device("Test_Jetson_Nano", default_latency_budget_ms=80)


@pytest.fixture
def odroid(db):
    return factories.device(
        "Test_Odroid_N2", accelerator_kind="mali_gpu", accelerator_name="Mali-G52", peak_fp32_gflops=60,
        peak_fp16_gflops=None, memory_mb=4096, os="Ubuntu 20.04", engines=["pytorch", "onnxruntime", "tvm", "tflite"],
        default_latency_budget_ms=250,
    )


@pytest.fixture
def digits(team):
    dataset = factories.dataset(team, name="pets", classes=("cat", "dog"))
    dataset.stats, dataset.num_images = STATS, 110
    dataset.save()
    return dataset


@pytest.fixture
def cars(team):
    return factories.dataset(team, name="cars", task="detection", classes=("car",))


@pytest.fixture
def project(team, owner, digits, jetson):
    project = factories.project(team, name="pets-on-nano", dataset=digits, device=jetson, engine="tensorrt",
                                precision="fp16", input_size=224, latency_budget_ms=80, created_by=owner)
    Job.objects.create(project=project, stage="recommend", queue="cpu", status=JobStatus.SUCCEEDED, progress=100)
    return project


@pytest.fixture
def htmx():
    """Headers htmx sends with every request it makes."""
    return {"HX-Request": "true"}
