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
