"""An imported classifier is scored on the project's own validation images when it is imported: one that scores no
better than guessing (its outputs in another order than the dataset's classes, another mean/std or input size) is
kept, and the page and the API say what was measured, the chance level and the likely causes. Where the images are
too few to tell a broken model from a middling one, they say that instead."""

from pathlib import Path

import numpy as np
import pytest
import torch
from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse
from PIL import Image
from rest_framework.test import APIClient

from deployment.imports import chance_warning
from projects.jobs.models import JobLogLine
from projects.models import Dataset
from projects.tests import factories
from training.models import TrainingRun

pytestmark = pytest.mark.django_db
CLASSES = ["blue", "green", "red"]  # the dataset's order (its folders, sorted)
CHANNEL = {"red": 0, "green": 1, "blue": 2}


def colour_dataset(team, per_class: int = 6) -> Dataset:
    """Noisy photos of one dominant colour each, in train/ and val/ folders, registered as the team's dataset."""
    relative = f"datasets/test/colours-{team.pk}"
    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for name in CLASSES:
            folder = Path(settings.MEDIA_ROOT) / relative / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                pixels = rng.integers(0, 90, (24, 24, 3))
                pixels[..., CHANNEL[name]] += 140
                Image.fromarray(pixels.astype(np.uint8)).save(folder / f"{i}.png")
    return Dataset.objects.create(team=team, name="colours", task="classification", path=relative,
                                  class_names=CLASSES, num_images=6 * per_class, sha256="0" * 64)


class ByColour(torch.nn.Module):
    """A classifier of pixels in [0, 1] whose outputs are the colours in `order`: the mean of each one's channel."""

    def __init__(self, order):
        super().__init__()
        self.register_buffer("pick", torch.eye(3)[[CHANNEL[name] for name in order]])

    def forward(self, x):
        return 10 * x.mean(dim=(2, 3)) @ self.pick.T


def torchscript(tmp_path, model) -> SimpleUploadedFile:
    path = tmp_path / "theirs.pt"
    torch.jit.trace(model.eval(), torch.rand(1, 3, 16, 16)).save(str(path))
    return SimpleUploadedFile("theirs.pt", path.read_bytes())


@pytest.fixture
def project(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    return factories.project(team, name="colours", dataset=colour_dataset(team), input_size=16)


def api_import(project, upload):
    api = APIClient()
    api.force_authenticate(project.team.members.get(username="alice"))
    # the model takes pixels in [0, 1]: mean 0, std 1
    return api, api.post("/api/model-imports/", {"project": project.pk, "file": upload, "input_size": 16,
                                                 "mean": [0, 0, 0], "std": [1, 1, 1]}, format="multipart")


def test_a_model_that_fits_the_dataset_is_scored_and_not_flagged(project, tmp_path):
    api, answer = api_import(project, torchscript(tmp_path, ByColour(CLASSES)))
    assert answer.status_code == 201, answer.json()
    scores = answer.json()["checks"]["validation"]
    assert (scores["top1"], scores["n_images"], scores["chance"], scores["split"]) == (100.0, 18, 33.33, "validation")
    assert answer.json()["accuracy_warning"] is None
    detail = api.get(f"/api/projects/{project.pk}/").json()["imported_model"]
    assert detail["validation"]["top1"] == 100.0 and detail["accuracy_warning"] is None
    page = Client()
    page.force_login(project.team.members.get(username="carol"))
    body = page.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "top-1 100.0% on 18 validation images at import (chance 33.33%)" in body
    assert 'data-testid="import-accuracy-warning"' not in body


def test_a_model_with_its_outputs_in_another_order_is_kept_with_a_warning_that_names_the_order(project, tmp_path):
    api, answer = api_import(project, torchscript(tmp_path, ByColour(["red", "green", "blue"])))
    assert answer.status_code == 201, "flagged, not refused"
    warning = answer.json()["accuracy_warning"]
    assert (warning["verdict"], warning["top1"], warning["chance"], warning["n_images"]) == (
        "at_chance", 33.33, 33.33, 18)
    assert warning["message"] == ("The imported model is no better than chance on this project's validation images: "
                                  "top-1 33.33% on 18 images, where guessing among 3 classes scores 33.33%, and a "
                                  "clearly useful model (66.67%: right on half of what guessing gets wrong) would "
                                  "score this low less than 1% of the time. It was kept; check the likely causes "
                                  "below and import it again with the right settings.")
    assert warning["suggested_order"] == ["red", "green", "blue"]
    label_order, normalisation, size, data = warning["causes"]
    assert label_order.startswith("Label order: the model's outputs must be the dataset's classes in this order: "
                                  "blue, green, red. Its answers fit the order red, green, blue (top-1 100%")
    assert "mean 0, 0, 0 and std 1, 1, 1 must be the ones the model was trained with" in normalisation
    assert size == "Input size: 16 px must be the size the model was trained at."
    assert TrainingRun.objects.get(project=project).architecture["imported"] == "torchscript"

    # The API's project and the page (a viewer's too) say it until another model replaces it.
    assert api.get(f"/api/projects/{project.pk}/").json()["imported_model"]["accuracy_warning"] == warning
    page = Client()
    page.force_login(project.team.members.get(username="carol"))
    body = page.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert 'data-testid="import-accuracy-warning"' in body and "blue, green, red. Its answers fit the order" in body
    # Imported again through the page, in the right order: the flash and the card say all is well.
    editor = Client()
    editor.force_login(project.team.members.get(username="alice"))
    done = editor.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": torchscript(tmp_path, ByColour(CLASSES)), "labels": "\n".join(CLASSES), "input_size": 16,
        "mean": "0, 0, 0", "std": "1, 1, 1"}, follow=True)
    body = done.content.decode()
    assert "Imported theirs.pt: run Optimize &amp; convert next." in body
    assert 'data-testid="import-accuracy-warning"' not in body
    assert api.get(f"/api/projects/{project.pk}/").json()["imported_model"]["accuracy_warning"] is None


def test_the_page_import_of_a_model_fed_the_wrong_normalisation_flashes_the_warning(project, tmp_path):
    """Mean/std wrong: a model trained on ImageNet-normalised pixels (it picks the channel with no pixel below the
    mean), imported as if it took pixels in [0, 1], sees no pixel below zero and answers the first class for all."""

    class Centred(torch.nn.Module):
        def forward(self, x):
            return -10 * torch.relu(-x).mean(dim=(2, 3))[:, [2, 1, 0]]  # outputs: blue, green, red

    editor = Client()
    editor.force_login(project.team.members.get(username="alice"))
    right = editor.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": torchscript(tmp_path, Centred()), "labels": "\n".join(CLASSES), "input_size": 16,
        "mean": "0.485, 0.456, 0.406", "std": "0.229, 0.224, 0.225"}, follow=True).content.decode()
    assert "Imported theirs.pt: run Optimize &amp; convert next." in right, "with its own normalisation it is right"
    wrong = editor.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": torchscript(tmp_path, Centred()), "labels": "\n".join(CLASSES), "input_size": 16,
        "mean": "0, 0, 0", "std": "1, 1, 1"}, follow=True).content.decode()
    assert ("Imported theirs.pt: top-1 33.33% on this project&#x27;s images, where guessing scores 33.33%. The likely "
            "causes are on the page.") in wrong
    assert "Normalisation: mean 0, 0, 0 and std 1, 1, 1 must be the ones the model was trained with" in wrong
    assert "Its answers fit the order" not in wrong, "no other label order explains it"


def test_chance_is_judged_on_the_number_of_images_scored():
    common = {"mean": (0, 0, 0), "std": (1, 1, 1), "input_size": 32}

    def verdict(correct: int, n: int, k: int):
        """The verdict on `correct` of `n` right among k classes (the misses spread over the other outputs)."""
        confusion = [[0] * k for _ in range(k)]
        for i in range(n):
            confusion[i % k][i % k if i < correct else (i + 1) % k] += 1
        scores = {"split": "validation", "n_images": n, "num_classes": k, "chance": round(100 / k, 2),
                  "confusion": confusion, "top1": round(100 * correct / n, 2)}
        warning = chance_warning(scores, labels=[f"c{i}" for i in range(k)], **common)
        return warning and warning["verdict"]

    # Guessing often scores these, and a clearly useful model (75% of 2 classes, 55% of 10) could too: too few.
    assert verdict(6, 8, 2) == "too_few"
    assert verdict(2, 6, 10) == "too_few", "a middling model on 6 images is not called broken"
    # A useful model would rarely score this low: at chance.
    assert verdict(40, 80, 2) == "at_chance"
    assert verdict(30, 200, 10) == "at_chance", "15% on 200 images: not significantly above 10%"
    assert verdict(0, 6, 10) == "at_chance", "none right of 6: a useful model misses all 6 under 1% of the time"
    # Clearly better than guessing: nothing to say.
    assert verdict(60, 80, 2) is None and verdict(4, 6, 10) is None
    assert chance_warning(None, labels=["a", "b"], **common) is None


@pytest.fixture
def few_images_project(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    return factories.project(team, name="colours", dataset=colour_dataset(team, per_class=2), input_size=16)


def test_a_model_scored_on_too_few_images_is_not_called_broken(few_images_project, tmp_path):
    """Two of its three outputs swapped: 2 of 6 right. On 18 images that is at chance (the test above); on 6 a model
    right on two in three could score it too, and the page, the flash and the API say the images could not tell."""
    project = few_images_project
    editor = Client()
    editor.force_login(project.team.members.get(username="alice"))
    done = editor.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": torchscript(tmp_path, ByColour(["blue", "red", "green"])), "labels": "\n".join(CLASSES),
        "input_size": 16, "mean": "0, 0, 0", "std": "1, 1, 1"}, follow=True)
    body = done.content.decode()
    assert ("Imported theirs.pt: top-1 33.33% on 6 of this project&#x27;s images, too few to tell it from guessing "
            "(33.33%). Run Optimize &amp; convert next, or add images to judge it.") in body
    assert 'data-verdict="too_few"' in body
    assert ("6 validation images are too few to tell whether the imported model is better than chance: top-1 "
            "33.33% on 6 images, where guessing among 3 classes scores 33.33%. On so few images guessing could score "
            "that, and so could a clearly useful model (66.67%: right on half of what guessing gets wrong).") in body
    assert "no better than chance" not in body and "Label order" not in body and "Normalisation" not in body
    # the import's log notes it, without calling it a warning
    assert JobLogLine.objects.filter(job__project=project, text__startswith="Note: 6 validation images are too few to "
                                     "tell").exists()

    api = APIClient()
    api.force_authenticate(project.team.members.get(username="carol"))
    warning = api.get(f"/api/projects/{project.pk}/").json()["imported_model"]["accuracy_warning"]
    assert (warning["verdict"], warning["n_images"], warning["causes"], warning["suggested_order"]) == (
        "too_few", 6, [], None)
