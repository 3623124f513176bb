"""In Chromium: a project's settings page offers bf16 for OpenVINO where the CPU has it, saves it, and refuses it for
an engine that cannot build it, with the reason next to the field."""

import re

import pytest

from projects.models import Project
from projects.tests import factories
from projects.tests.test_browser import log_in
from tango_common.engines import cpu_has_bf16

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.fixture
def page(browser):
    context = browser.new_context()
    page = context.new_page()
    yield page
    context.close()


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions (AVX512-BF16 / AMX)")
def test_settings_save_openvino_bf16_and_refuse_bf16_for_onnx_runtime(portal, page):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="bf16-walk")
    project.device = factories.device(
        "Xeon_box",
        tier="pc",
        cpu_arch="x86_64",
        accelerator_kind="none",
        engines=["pytorch", "onnxruntime", "openvino"],
    )
    project.engine, project.precision = "onnxruntime", "fp32"
    project.save()
    log_in(page, portal, "alice")
    page.goto(f"{portal['url']}/projects/{project.pk}/edit/")
    assert page.locator("#id_precision option[value=bf16]").count() == 1

    page.select_option("#id_engine", "onnxruntime")
    page.select_option("#id_precision", "bf16")
    page.click("button.btn-primary[type=submit]")
    page.get_by_text("ONNX Runtime does not support bf16.").first.wait_for()
    assert Project.objects.get(pk=project.pk).precision == "fp32"

    page.select_option("#id_engine", "openvino")
    page.select_option("#id_precision", "bf16")
    page.click("button.btn-primary[type=submit]")
    page.wait_for_url(re.compile(rf".*/projects/{project.pk}/$"))
    project.refresh_from_db()
    assert (project.engine, project.precision) == ("openvino", "bf16")
