"""An imported classifier is scored on the project's own validation images when it is imported: one that scores no
better than guessing (its outputs in another order than the dataset's classes, another mean/std or input size) is
kept, and the page and the API say what was measured, the chance level and the likely causes."""

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
    assert (warning["top1"], warning["chance"], warning["n_images"]) == (33.33, 33.33, 18)
    assert warning["message"] == ("The imported model is no better than chance on this project's validation images: "
                                  "top-1 33.33% on 18 images, where guessing among 3 classes scores 33.33%. It was "
                                  "kept; check the likely causes below and import it again with the right settings.")
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
    labels = ["a", "b"]
    common = {"labels": labels, "mean": (0, 0, 0), "std": (1, 1, 1), "input_size": 32}

    def scores(confusion):
        n = sum(map(sum, confusion))
        return {"split": "validation", "n_images": n, "num_classes": 2, "chance": 50.0, "confusion": confusion,
                "top1": round(100 * (confusion[0][0] + confusion[1][1]) / n, 2)}

    assert chance_warning(scores([[3, 1], [1, 3]]), **common) is not None, "6 of 8 is what guessing often scores"
    assert chance_warning(scores([[30, 10], [10, 30]]), **common) is None, "60 of 80 is not"
    assert chance_warning(None, **common) is None
