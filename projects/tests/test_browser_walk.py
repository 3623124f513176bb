"""In Chromium, a new user's walk through the pages a first project touches, with the browser console watched: the
wizard (upload help, latency budget), Create, the settings page (engines follow the device), the upload page,
and the recommendation card with its estimate of the training time. Every wait is bounded and waits for
something the page shows."""

import re

import pytest

from projects.models import Project
from projects.tests import factories
from recommender.models import Device

from .browsing import settled
from .test_browser import log_in
from .test_browser_new_user import colour_zip

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]
SHOTS = "/tmp/ux-shots"
# Every fragment a job console swaps into the page, kept in the page (an init script: before the console connects).
CONSOLES_SEEN = ("window.consoles = []; document.addEventListener('htmx:wsAfterMessage',"
                 " e => window.consoles.push(e.detail.message))")


def console_errors(tab) -> list[str]:
    """Errors the page logs (htmx's misconfigurations among them), collected from now on."""
    errors: list[str] = []
    tab.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    tab.on("pageerror", lambda error: errors.append(str(error)))
    return errors


def shot(tab, name: str) -> None:
    """A screenshot for a person to look at, after checking no template source leaked into the page."""
    text = tab.locator("body").inner_text()
    assert "{#" not in text and "{%" not in text, "a template comment or tag is shown as text"
    tab.screenshot(path=f"{SHOTS}/{name}.png", full_page=True)


@pytest.mark.timeout(300)
def test_a_new_user_creates_a_project_edits_its_settings_and_reads_the_training_estimate(portal, page, tmp_path):
    factories.team_with("Vision", alice="owner")
    errors = console_errors(page)
    log_in(page, portal, "alice")
    page.goto(portal["url"] + "/projects/new/")

    page.fill("#id_name", "walk")
    page.check("input[name=task][value=classification]")
    page.click("button[value=next]")

    # The upload help is the chosen task's layout only. (Each step is acted on once htmx has wired it.)
    settled(page.locator("[data-testid=wizard-upload]"))
    upload_help = page.locator("#id_upload-file_helptext").inner_text()
    assert "One folder per class" in upload_help and "data.yaml" not in upload_help, upload_help
    page.fill("#id_upload-name", "colours")
    page.set_input_files("#id_upload-file", str(colour_zip(tmp_path / "colours.zip", per_class=30, size=32)))
    page.click("[data-testid=wizard-upload-submit]")
    settled(page.locator("[data-testid=uploaded]"), timeout=60_000)
    page.click("button[value=next]")

    settled(page.locator("[data-device-search]")).fill("odroid n2")
    page.locator(".device-card:visible").first.click()
    page.click("button[value=next]")

    # The latency budget is optional and empty; the device's typical budget is its placeholder.
    budget = settled(page.locator("#id_latency_budget_ms"))
    odroid = Device.objects.get(name="Odroid_N2")
    assert budget.input_value() == ""
    assert budget.get_attribute("placeholder") == f"{odroid.default_latency_budget_ms:g}"
    # Picking another engine redraws the step through htmx (the redraw inherits the wizard form's hx-disabled-elt).
    page.select_option("#id_engine", "pytorch")
    settled(page.locator("#id_engine option[value=pytorch][selected]"), timeout=30_000)
    shot(page, "wizard-environment")
    page.check("input[name=run_mode][value=step]")
    page.click("button[value=next]")
    settled(page.locator("[data-testid=review-model]"))
    page.click("button[value=create]")
    page.wait_for_url(re.compile(r".*/projects/\d+/$"))
    project = Project.objects.get(name="walk")
    assert project.latency_budget_ms == odroid.default_latency_budget_ms, "empty: the device's budget applies"
    page.locator("[data-testid=run-recommend]").wait_for()
    assert not errors, errors  # htmx said "hx-disabled-elt ... returned no matches" after Create

    # Settings: the engines are the device's, and follow the device when it changes.
    page.goto(f"{portal['url']}/projects/{project.pk}/edit/")
    engines = page.locator("#id_engine option")
    assert sorted(engines.evaluate_all("os => os.map(o => o.value)")) == sorted(odroid.engines)
    jetson = Device.objects.get(name="Jetson_Nano")
    page.select_option("#id_device", str(jetson.pk))
    settled(page.locator(f"#id_device option[value='{jetson.pk}'][selected]"), timeout=30_000)
    offered = page.locator("#id_engine option").evaluate_all("os => os.map(o => o.value)")
    assert sorted(offered) == sorted(jetson.engines), offered
    shot(page, "settings-after-device-change")
    page.goto(f"{portal['url']}/projects/{project.pk}/")

    # Recommend: the card names the model that trains, the expected accuracy has its unit, and the pipeline says
    # how long training will take on this server.
    page.click("[data-testid=run-recommend]")
    page.locator("#stage-recommend .badge").get_by_text("succeeded").wait_for(timeout=180_000)
    page.locator("[data-testid=preview-train]").wait_for(timeout=30_000)
    estimate = page.locator("[data-testid=preview-train]").inner_text()
    assert re.search(r"for 50 epochs \(chosen for 72 training images\) should take about \d+ (s|min)", estimate), \
        estimate
    assert "Expected top-1 %" in page.locator("[data-testid=recommendation] table").text_content()
    shot(page, "project-after-recommend")

    # "Pick a model on the project page": the choice is still on the card once its console has connected (it used to
    # redraw the finished card without the project, the role and a CSRF token, and the choice vanished).
    recommend = project.jobs.get(stage="recommend")
    replayed = f"() => window.consoles.some(m => m.includes('id=\"log-{recommend.pk}\"'))"
    page.add_init_script(CONSOLES_SEEN)
    page.reload()
    page.wait_for_function(replayed, timeout=30_000)  # connected: the state, when it sends one, follows at once
    settled(page.locator("[data-testid=model-choice] select[name=pick]")).select_option("resnet18")
    page.click("[data-testid=use-pick]")
    page.get_by_text("Training will use ResNet-18.").wait_for()
    page.wait_for_function(replayed, timeout=30_000)
    assert "ResNet-18 (picked)" in page.locator("[data-testid=training-uses]").inner_text()
    project.refresh_from_db()
    assert project.options["model"] == "resnet18"
    assert not errors, errors


def test_the_upload_page_shows_the_layout_of_the_task_picked(portal, page):
    factories.team_with("Vision", alice="owner")
    errors = console_errors(page)
    log_in(page, portal, "alice")
    page.goto(portal["url"] + "/datasets/upload/")
    classification, detection = (page.locator(f"[data-testid=layout-{task}]") for task in ("classification",
                                                                                           "detection"))
    page.check("input[name=task][value=detection]")
    assert detection.is_visible() and not classification.is_visible()
    page.check("input[name=task][value=classification]")
    assert classification.is_visible() and not detection.is_visible()
    shot(page, "upload-classification")
    assert not errors, errors
