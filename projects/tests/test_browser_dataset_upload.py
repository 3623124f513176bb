"""In Chromium, through the live server: the dataset forms (the upload page and the New project wizard's dataset step)
read their file through the upload guard set before the CSRF check reads the body (projects.uploads.upload_page). A
file that is not a zip is refused with the reason next to the file, the form keeps the other answers and still works,
and a good zip sent from the same form is kept as a dataset."""

import re

import pytest

from projects.models import Dataset
from projects.tests import factories

from .browsing import settled
from .test_browser import log_in
from .test_browser_new_user import colour_zip

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

NOT_A_ZIP = "notes.txt is not a .zip archive; zip the dataset's folder and upload that."
NOTES = {"name": "notes.txt", "mimeType": "text/plain", "buffer": b"not a dataset\n" * 4096}


def test_the_upload_page_refuses_a_file_that_is_not_a_zip_then_keeps_a_good_one(portal, page, tmp_path):
    factories.team_with("Vision", alice="owner")
    log_in(page, portal, "alice")
    page.goto(portal["url"] + "/datasets/upload/")
    page.fill("#id_name", "colours")
    page.check("input[name=task][value=classification]")

    settled(page.locator("#id_file")).set_input_files(files=[NOTES])
    page.click("button:has-text('Upload and check')")
    field = page.locator("#field-file")
    field.get_by_text(NOT_A_ZIP).wait_for()
    assert page.input_value("#id_name") == "colours", "the other answers are kept"
    assert not Dataset.objects.filter(name="colours").exists()

    settled(page.locator("#id_file")).set_input_files(str(colour_zip(tmp_path / "colours.zip")))
    page.click("button:has-text('Upload and check')")
    page.wait_for_url(re.compile(r".*/datasets/\d+/$"), timeout=60_000)
    page.get_by_text("Uploaded colours: 72 images.").wait_for()
    assert Dataset.objects.get(name="colours").num_images == 72


def test_the_wizards_dataset_step_refuses_a_file_that_is_not_a_zip_then_keeps_a_good_one(portal, page, tmp_path):
    factories.team_with("Vision", alice="owner")
    log_in(page, portal, "alice")
    page.goto(portal["url"] + "/projects/new/")
    page.fill("#id_name", "colours")
    page.check("input[name=task][value=classification]")
    page.click("button[value=next]")

    settled(page.locator("[data-testid=wizard-upload]"))
    page.fill("#id_upload-name", "colours")
    page.set_input_files("#id_upload-file", files=[NOTES])
    page.click("[data-testid=wizard-upload-submit]")
    settled(page.locator("#field-upload-file").get_by_text(NOT_A_ZIP))
    assert page.input_value("#id_upload-name") == "colours"
    assert not Dataset.objects.filter(name="colours").exists()

    page.set_input_files("#id_upload-file", str(colour_zip(tmp_path / "colours.zip")))
    page.click("[data-testid=wizard-upload-submit]")
    settled(page.locator("[data-testid=uploaded]").get_by_text("Uploaded colours: 72 images, 3 classes"),
            timeout=60_000)
    assert page.locator("input[name=dataset]:checked").count() == 1
    assert Dataset.objects.get(name="colours").num_images == 72
