"""In Chromium: a project's settings page offers bf16 for OpenVINO where the CPU has it and saves it; for an engine
that cannot give bf16 it is not offered (the precisions follow the engine picked, redrawn when it changes). A forged
bf16 for ONNX Runtime is refused by the server: test_bf16_precision.py."""

import re

import pytest

from projects.tests import factories
from projects.tests.browsing import settled
from projects.tests.test_browser import log_in
from tango_common.engines import cpu_has_bf16

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


@pytest.mark.skipif(not cpu_has_bf16(), reason="this CPU has no bf16 instructions (AVX512-BF16 / AMX)")
def test_settings_offer_bf16_for_openvino_only_and_save_it(portal, page):
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
    assert page.input_value("#id_engine") == "onnxruntime"
    assert page.locator("#id_precision option[value=bf16]").count() == 0, "ONNX Runtime has no bf16 to offer"

    page.select_option("#id_engine", "openvino")  # redraws the form with OpenVINO's precisions
    settled(page.locator("#id_engine option[value=openvino][selected]"))  # wired by htmx: Save posts through it
    page.locator("#id_precision option[value=bf16]:not([disabled])").wait_for(state="attached")
    page.select_option("#id_precision", "bf16")
    page.click("button.btn-primary[type=submit]")
    page.wait_for_url(re.compile(rf".*/projects/{project.pk}/$"))
    project.refresh_from_db()
    assert (project.engine, project.precision) == ("openvino", "bf16")
