"""The quality gate through the real train stage: a model that does no better than chance ends as failed (quality)
with the reason and what to try, on the page and in the API; automatic mode stops there."""

import random
from pathlib import Path

import pytest
from django.conf import settings
from django.test import Client
from PIL import Image
from rest_framework.test import APIClient

from projects.jobs.models import Job, JobStatus
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue
from projects.models import Dataset, RunMode
from projects.tests import factories

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


def noise_dataset(team) -> Dataset:
    """Three classes of the same kind of random noise: nothing to learn, so a model can only guess."""
    rng = random.Random(0)
    root = Path(settings.MEDIA_ROOT) / "datasets" / "test" / f"noise-{team.pk}"
    classes = ["a", "b", "c"]
    for split, count in (("train", 16), ("val", 16)):
        for cls in classes:
            (root / split / cls).mkdir(parents=True, exist_ok=True)
            for i in range(count):
                pixels = bytes(rng.randrange(256) for _ in range(16 * 16 * 3))
                Image.frombytes("RGB", (16, 16), pixels).save(root / split / cls / f"{i}.png")
    return Dataset.objects.create(team=team, name="noise", task="classification", path=str(root.relative_to(
        settings.MEDIA_ROOT)), class_names=classes, num_images=96, sha256="2" * 64)


def test_a_model_at_chance_fails_on_quality_with_what_to_try():
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, epochs=1)
    project.dataset = noise_dataset(team)
    project.run_mode = RunMode.AUTO
    project.save()
    Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, result={"model": "resnet18"})
    job = job_enqueue(project=project, stage_key="train")
    job_execute(job_id=job.pk, attempt=1)
    job.refresh_from_db()

    assert job.status == JobStatus.FAILED and job.error.startswith("Quality gate: validation top-1")
    assert "no better than chance" in job.error and "What to try" in job.error
    gate = job.result["quality"]
    assert not gate["passed"] and gate["required"] > 0.45 and gate["advice"]
    assert job.result["history"], "the curves stay on the page"
    assert not Job.objects.filter(project=project, stage="convert").exists(), "automatic mode stops here"

    client = APIClient()
    client.force_authenticate(team.members.get(username="alice"))
    body = client.get(f"/api/jobs/{job.pk}/").json()
    assert body["status"] == "failed" and body["result"]["quality"]["passed"] is False
    page = Client()
    page.force_login(team.members.get(username="alice"))
    html = page.get(f"/projects/{project.pk}/").content.decode()
    assert "failed quality" in html and "What to try" in html


def test_a_detector_that_finds_nothing_fails_the_gate_with_what_to_try():
    from training.engine.quality import detection_verdict, summary

    failed = detection_verdict(map50=0.01, epochs=10, n_train=40, input_size=64)
    assert not failed["passed"] and "finds almost none of the objects" in failed["reason"]
    text = summary(failed)
    assert "10 epochs is short" in text and "40 training images" in text and "At 64 px" in text
    assert detection_verdict(map50=0.6)["passed"]
    below = detection_verdict(map50=0.6, min_map50=0.7)
    assert not below["passed"] and "the project's minimum" in below["reason"]


def test_a_tiny_detection_set_from_scratch_is_told_what_to_change_first():
    """About 40 photos, the defaults (50 epochs, batch 16, ultralytics' nominal batch of 64): the run updates the
    weights 25 times. The failure says so with the numbers to set, and puts pretrained weights first; the floor
    stays where it is."""
    from training.engine.quality import DETECTION_FLOOR, detection_verdict, summary, weight_updates

    assert weight_updates(n_train=32, epochs=50, batch=16) == 25
    failed = detection_verdict(map50=0.0, n_train=32, epochs=50, batch=16, input_size=320, model="yolo11s")
    pretrained, updates, smaller, more = failed["advice"][:4]
    assert pretrained.startswith("Start from pretrained weights") and "32 images are too few" in pretrained
    assert updates == ("The run made only 25 weight updates: 50 epochs of 2 batches of 16, and one update per 64 "
                       "images (ultralytics' nominal batch size, nbs). In the Training options set the batch size to "
                       "8, the nominal batch size (nbs) to 8 and the epochs to about 50: about 200 updates.")
    assert smaller.startswith("Pick a smaller model: YOLO11n rather than YOLO11s")
    assert more.startswith("32 training images is few for detection")
    assert "(1) Start from pretrained weights" in summary(failed)
    # what was already done is not advised again; enough updates are not questioned
    done = detection_verdict(map50=0.0, n_train=32, epochs=50, batch=8, nbs=8, model="yolo11n", pretrained=True)
    assert not any(tip.startswith(("Start from", "The run made", "Pick a smaller")) for tip in done["advice"])
    assert DETECTION_FLOOR == 0.05 and not detection_verdict(map50=0.049)["passed"]


def test_too_few_updates_at_the_small_set_defaults_asks_only_for_more_epochs():
    """A walk: 29 photos, 5 epochs; the train stage had already set batch 7 and nbs 7 (an update per batch), yet the
    failure told the user to set the batch size to 7 and nbs to 7, as if those were the cause. Only what differs from
    the run is asked for."""
    from training.engine.quality import detection_verdict

    failed = detection_verdict(map50=0.0, n_train=29, epochs=5, batch=7, nbs=7, input_size=160, model="yolo11l")
    updates = next(tip for tip in failed["advice"] if tip.startswith("The run made"))
    assert updates == ("The run made only 25 weight updates: 5 epochs of 5 batches of 7, and one update per 7 "
                       "images (ultralytics' nominal batch size, nbs). In the Training options set the epochs to "
                       "about 40: about 200 updates.")
    only_nbs = detection_verdict(map50=0.0, n_train=32, epochs=10, batch=8, nbs=64)
    assert "set the nominal batch size (nbs) to 8 and the epochs to about 50" in " ".join(only_nbs["advice"])


@pytest.mark.django_db
def test_a_small_detection_set_trains_with_an_update_per_batch_by_default(settings, tmp_path):
    from projects.datasets.detection_demo import write_detection_demo
    from training.detection import detection_training_options
    from training.engine.quality import weight_updates

    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner")
    write_detection_demo(Path(settings.MEDIA_ROOT) / "datasets/objects", train=32, val=8, size=64, classes=["cat"],
                         seed=3)
    dataset = Dataset.objects.create(team=team, name="objects", task="detection", path="datasets/objects",
                                     class_names=["cat"], num_images=40, sha256="3" * 64)
    project = factories.project(team, name="objects", task="detection", dataset=dataset, input_size=64)
    options = detection_training_options(project)
    assert (options["epochs"], options["batch"], options["overrides"]) == (50, 8, {"nbs": 8})
    assert weight_updates(n_train=32, epochs=50, batch=8, nbs=8) == 200  # was 25 at batch 16, nbs 64
    # what the user set is kept
    project.options = {"train": {"batch": 16, "overrides": {"nbs": 32, "lr0": 0.02}}}
    options = detection_training_options(project)
    assert (options["batch"], options["overrides"]) == (16, {"nbs": 32, "lr0": 0.02})
