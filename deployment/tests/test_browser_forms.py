"""In Chromium: the Import and Try-it forms are laid out like the portal's other forms (each label above its field,
the field the form's width), not labels run inline with their inputs."""

import pytest
from django.utils import timezone

from deployment.models import Artifact
from projects.jobs.models import Job, JobStatus
from projects.tests import factories
from projects.tests.test_browser import log_in

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


VIEWPORT = {"width": 1280, "height": 900}


def assert_stacked(page, form: str, fields: list[str]):
    """Each field's label sits above it, and the field spans the form's width as the other forms' fields do."""
    width = page.locator(form).bounding_box()["width"]
    for field in fields:
        label = page.locator(f"label[for={field}]").bounding_box()
        box = page.locator(f"#{field}").bounding_box()
        assert label["y"] + label["height"] <= box["y"] + 1, f"{field}'s label is not above it"
        assert box["width"] > 0.8 * width, f"{field} is {box['width']:.0f} px wide in a {width:.0f} px form"


def test_the_import_and_try_forms_stack_their_labels_like_the_other_forms(portal, page):
    # Regression: both forms wrapped each input in its label with no field markup, so labels ran inline.
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="forms-walk")
    job = Job.objects.create(project=project, stage="convert", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    Artifact.objects.create(project=project, job=job, kind=Artifact.Kind.ONNX, engine="onnxruntime", precision="fp32",
                            path="artifacts/model.onnx", sha256="0" * 64, status=Artifact.Status.VERIFIED)
    log_in(page, portal, "alice")

    page.goto(f"{portal['url']}/projects/{project.pk}/import-model/")
    assert_stacked(page, "[data-testid=import-form]", ["import-file", "import-labels", "import-size"])

    page.goto(f"{portal['url']}/projects/{project.pk}/try/")
    assert_stacked(page, "[data-testid=try-form]", ["try-artifact", "try-image", "try-top-k"])


def test_the_import_form_refuses_a_file_that_is_not_a_model_and_checks_one_that_is_named_as_one(portal, page):
    """The page reads its upload through a guard set before the CSRF check reads the body (csrf_exempt outside,
    csrf_protect inside): in a real browser the form's token still passes, a wrongly named file is refused by its
    name, and a file named as a model reaches the model check."""
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="import-refusals")
    log_in(page, portal, "alice")
    for name, message in (("notes.exe", "Upload an ONNX model (.onnx) or a TorchScript model"),
                          ("junk.onnx", "not a valid ONNX model")):
        page.goto(f"{portal['url']}/projects/{project.pk}/import-model/")
        page.set_input_files("#import-file", files=[{"name": name, "mimeType": "application/octet-stream",
                                                     "buffer": b"\x08\x07not a model" * 100}])
        page.click("[data-testid=import-form] button[type=submit]")
        assert message in page.locator("[data-testid=import-error]").inner_text()
    assert not Job.objects.filter(project=project).exists()


def test_an_import_through_the_page_says_it_ran_sandboxed(portal, page):
    """The page says what confines the check, and the import's log says what held on this server (Landlock, or
    that the kernel has none) rather than the page's promise alone."""
    from tango_common.sandbox import landlock_abi

    from .test_imports import memory_hungry_model

    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="import-sandboxed")
    project.dataset.class_names = ["cat", "dog"]
    project.dataset.save()
    log_in(page, portal, "alice")
    page.goto(f"{portal['url']}/projects/{project.pk}/import-model/")
    assert "writes only a scratch folder of its own, opens no TCP connection" in page.locator("main").inner_text()
    page.set_input_files("#import-file", files=[{"name": "small.onnx", "mimeType": "application/octet-stream",
                                                 "buffer": memory_hungry_model(0.001).SerializeToString()}])
    page.fill("#import-size", "8")
    page.click("[data-testid=import-form] button[type=submit]")
    page.wait_for_url(f"**/projects/{project.pk}/")
    assert "Imported small.onnx" in page.locator("main").inner_text()
    job = Job.objects.get(project=project, stage="train")
    said = "sandboxed by Landlock" if landlock_abi() else "not sandboxed (kernel without Landlock)"
    assert job.log_lines.filter(text__contains=f"It ran once on this server, {said}").exists()
