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
