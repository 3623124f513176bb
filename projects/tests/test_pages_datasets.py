"""Dataset pages: upload errors shown inline (htmx and not), the stats page, and the stats readers."""

import io
import zipfile

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from projects.dataset_stats import bar_chart, class_split_counts, dataset_summary
from projects.datasets.tests.factories import png
from projects.models import Dataset

from .pages_fixtures import *  # noqa: F403
from .pages_fixtures import STATS

UPLOAD = reverse("projects:dataset_upload")


def upload(client, team, filename, content=b"hello", headers=None, **extra):
    data = {"team": team.pk, "name": "new-pets", "task": "classification",
            "file": SimpleUploadedFile(filename, content), **extra}
    return client.post(UPLOAD, data, headers=headers or {})


def test_a_file_that_is_not_a_zip_is_refused_inline_with_htmx(client, owner, team, htmx):
    client.force_login(owner)
    response = upload(client, team, "notes.txt", headers=htmx)
    body = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in body and "hx-encoding=\"multipart/form-data\"" in body
    assert "notes.txt is not a .zip archive" in body
    assert 'value="new-pets"' in body, "the other answers are kept"
    assert not Dataset.objects.filter(name="new-pets").exists()


def test_a_file_that_is_not_a_zip_is_refused_on_a_full_page_without_htmx(client, editor, team):
    client.force_login(editor)
    body = upload(client, team, "notes.txt").content.decode()
    assert "<html" in body and "notes.txt is not a .zip archive" in body


def test_a_zip_named_file_that_is_not_a_zip_shows_the_validators_message_next_to_the_file(
        client, owner, team, htmx, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    client.force_login(owner)
    body = upload(client, team, "pets.zip", b"definitely not a zip archive", headers=htmx).content.decode()
    field = body[body.index('id="field-file"'):]
    assert "The upload is not a zip archive or is damaged" in field[:field.index('class="upload-layouts"')]
    assert not Dataset.objects.filter(name="new-pets").exists()


def test_a_real_upload_goes_to_the_dataset_page_with_its_stats(client, editor, team, htmx, settings, tmp_path):
    from projects.datasets.digits import make_digits_zip

    settings.MEDIA_ROOT = tmp_path / "media"
    archive = make_digits_zip(tmp_path / "digits.zip", upscale=1).read_bytes()
    client.force_login(editor)
    response = upload(client, team, "digits.zip", archive, headers=htmx, name="digits")
    dataset = Dataset.objects.get(name="digits")
    assert response["HX-Redirect"] == reverse("projects:dataset_detail", args=[dataset.pk])
    assert dataset.created_by == editor and dataset.num_images == 1797

    page = client.get(response["HX-Redirect"]).content.decode()
    assert page.count("<rect x=") >= 10, "ten digit classes, split into train and val"
    assert "8×8" in page, "8×8 scans"
    thumbs = page[page.index('data-testid="thumbnails"'):]
    assert thumbs.count('<img src="data:image/png;base64,') == 30, "three samples of each of the ten digits"
    assert "All 1797 images are grayscale." in page and "one was made" in page


def test_an_outsider_cannot_upload_into_a_team_they_are_not_in(client, outsider, team, htmx):
    client.force_login(outsider)
    body = upload(client, team, "pets.zip", headers=htmx).content.decode()
    assert "Select a valid choice" in body
    assert not Dataset.objects.filter(name="new-pets").exists()


def test_the_upload_form_shows_a_progress_bar_and_only_editable_teams(client, editor, team, outsider_team):
    client.force_login(editor)
    body = client.get(UPLOAD + "?task=detection").content.decode()
    assert "data-upload-progress" in body and 'class="progress-bar"' in body
    assert team.name in body and outsider_team.name not in body
    detection = body[body.index('value="detection"'):]
    assert detection.index("checked") < detection.index(">"), "the wizard's link pre-selects the task"


def test_the_dataset_page_shows_classes_chart_splits_and_sizes(client, viewer, digits):
    client.force_login(viewer)
    body = client.get(reverse("projects:dataset_detail", args=[digits.pk])).content.decode()
    assert '<svg class="chart"' in body
    assert body.count("<rect x=") == 4, "two classes × two splits"
    assert "cat · train: 50" in body
    assert "28–640, mean 212 px" in body and "224×224" in body
    assert "All 110 images are RGB (three colour channels)." in body and '{"RGB"' not in body


@pytest.mark.parametrize("stats", [{}, {"class_counts": "junk"}, {"images_per_class": {"a": 3, "b": "x"}},
                                   {"common_sizes": [{"width": 1}], "image_width": {"min": "?"}}])
def test_the_dataset_page_survives_stats_of_any_shape(client, owner, digits, stats):
    digits.stats = stats
    digits.save()
    client.force_login(owner)
    assert client.get(reverse("projects:dataset_detail", args=[digits.pk])).status_code == 200


def test_class_names_are_escaped_in_the_chart(client, owner, digits):
    digits.stats = {"images_per_class": {"<script>alert(1)</script>": 3}}
    digits.save()
    client.force_login(owner)
    body = client.get(reverse("projects:dataset_detail", args=[digits.pk])).content.decode()
    assert "<script>alert(1)" not in body and "&lt;script&gt;" in body


def test_flat_counts_become_one_split():
    assert class_split_counts({"images_per_class": {"a": 3, "b": 0, "c": True}}) == {"a": {"all": 3}, "b": {"all": 0}}


def test_bars_are_sorted_biggest_first_and_scaled_to_the_widest():
    chart = bar_chart({"small": {"train": 1}, "big": {"train": 4, "val": 4}}, width=400, label_width=100)
    assert [b.label for b in chart.bars] == ["big", "small"]
    big, small = chart.bars
    assert big.end == pytest.approx(400 - 60)
    assert small.segments[0].width == pytest.approx((big.end - 100) / 8)
    assert [s for s, _ in chart.legend] == ["train", "val"]


def test_summary_of_the_validators_stats():
    summary = dataset_summary(STATS)
    assert summary["splits"] == {"train": 90, "val": 20}
    assert summary["sizes"]["common"][0] == {"size": "224×224", "count": 80}
    assert summary["other"] == []  # every key the validator writes has its own words
    assert summary["modes"] == "All 110 images are RGB (three colour channels)."
    assert summary["split_origin"] == "Split as uploaded (its own train and validation folders)."


def test_stats_read_as_sentences_not_raw_values():
    stats = {"modes": {"L": 270}, "split_generated": True, "split_counts": {"train": 216, "val": 54},
             "ignored_files": ["README.txt"], "images_without_boxes": {"train": 3, "val": 0}, "new_key": {"a": True}}
    summary = dataset_summary(stats)
    assert summary["modes"] == "All 270 images are grayscale."
    assert summary["split_origin"].startswith("The upload had no validation split, so one was made: 20%")
    assert summary["findings"] == ["1 file not used by the layout, left out: README.txt.",
                                   "Images without boxes (background): 3 in train."]
    assert summary["other"] == [("New key", "a yes")]
    assert dataset_summary({"modes": {"RGB": 250, "L": 20}})["modes"].startswith(
        "250 RGB (three colour channels), 20 grayscale.")


def test_empty_findings_are_not_listed_and_equal_sizes_read_as_one_number():
    summary = dataset_summary({"ignored_files": [], "images_without_boxes": None,
                               "image_width": {"min": 8, "max": 8, "mean": 8}})
    assert summary["other"] == []
    assert summary["sizes"]["width"] == "8"


def test_the_upload_help_names_the_data_yaml_a_detection_upload_is_refused_without(
        client, editor, team, settings, tmp_path):
    # Regression: the help said "Detection: images/ and YOLO labels/"; a zip made to it was refused for lacking
    # data.yaml. Both upload forms (this page, the wizard's dataset step) share the help.
    from projects.forms import DatasetUploadForm, WizardUploadForm

    settings.MEDIA_ROOT = tmp_path
    client.force_login(editor)
    page = client.get(UPLOAD).content.decode()
    help_text = page[page.index('data-testid="layout-detection"'):][:400]
    assert "data.yaml" in help_text and "names" in help_text
    assert "data.yaml" in str(WizardUploadForm(task="detection").fields["file"].help_text)
    # Each task's layout on its own: the wizard's task only, the upload page's switched by its task radio.
    assert "data.yaml" not in str(WizardUploadForm(task="classification").fields["file"].help_text)
    assert [task for task, _, _ in DatasetUploadForm(user=editor).layouts] == ["classification", "detection"]
    archive = io.BytesIO()
    with zipfile.ZipFile(archive, "w") as zf:
        zf.writestr("images/a.png", png())
        zf.writestr("labels/a.txt", "0 0.5 0.5 0.2 0.2\n")
    body = upload(client, team, "boxes.zip", archive.getvalue(), task="detection").content.decode()
    assert "data.yaml is missing" in body


def test_the_summary_tells_colour_channels_from_colour(tmp_path):
    """An RGB file has colour channels; whether the photo shows colour is measured (the summary said "All 40
    images are colour" of grey stone)."""
    from PIL import Image

    from projects.datasets.images import ImageStats, check_image

    stats = ImageStats()
    for i in range(4):
        grey, red = Image.new("RGB", (32, 32), (90 + i, 90 + i, 92)), Image.new("RGB", (32, 32), (200, 30, 40))
        for name, image in (("grey", grey), ("red", red)) if i < 1 else (("grey", grey),):
            image.save(tmp_path / f"{name}{i}.png")
            stats.add(check_image(tmp_path / f"{name}{i}.png", f"{name}{i}.png", 10**6))
    words = dataset_summary(stats.as_fields())["modes"]
    assert words == ("All 5 images are RGB (three colour channels). 4 of the 5 with colour channels show almost no "
                     "colour: they look nearly grey."), words
    assert "no colour" not in dataset_summary({"modes": {"RGB": 3}, "not_colourful": 0})["modes"]
