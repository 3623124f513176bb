"""The detection demo: offered on the projects page and by `tango demo --task detection`, built from the
generated dataset (nothing downloaded)."""

import pytest
from django.contrib.auth import get_user_model
from django.urls import reverse

from projects.commands import demo_tasks
from projects.datasets.detection_demo import CLASS_NAMES
from projects.tests import factories
from training import demo

pytestmark = pytest.mark.django_db


def test_detection_demo_is_registered_for_the_page_and_the_command(client):
    assert "detection" in demo_tasks()
    factories.team_with("Vision", alice="owner")
    client.force_login(get_user_model().objects.get(username="alice"))
    page = client.get(reverse("projects:list")).content.decode()
    assert "Try the detection demo" in page and 'name="task" value="detection"' in page


def test_detection_demo_project_trains_yolo11n_on_the_generated_objects(monkeypatch):
    # A smaller dataset than the real demo's 240 + 60 images: the same generator, in a second.
    monkeypatch.setitem(demo.DEMO_RECIPE, "train", 10)
    monkeypatch.setitem(demo.DEMO_RECIPE, "val", 5)
    monkeypatch.setitem(demo.DEMO_RECIPE, "image_size", 64)
    factories.device("Jetson_Nano")
    user = factories.user("alice")
    project = demo.detection_demo_create(user=user)
    assert project.task == "detection" and project.device.name == "Jetson_Nano"
    assert project.dataset.class_names == CLASS_NAMES
    assert project.dataset.stats["split_counts"] == {"train": 10, "val": 5}
    assert project.options["model"] == "yolo11n" and project.input_size == demo.DEMO_RECIPE["input_size"]
    assert demo.detection_demo_create(user=user).dataset == project.dataset  # the dataset is made once per team
