"""In Chromium: a reload in the middle of the new-project wizard, and the browser's Back, keep the answers given
(projects.wizard.Drafts). Both started the wizard over: the answers lived only in the page."""

import re

import pytest

from projects.models import Project
from projects.tests import factories

from .browsing import settled
from .test_browser import log_in
from .test_browser_walk import console_errors

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def step(tab) -> str:
    return tab.locator("ol.steps li.current").inner_text().strip()


@pytest.mark.timeout(180)
def test_a_reload_and_back_mid_wizard_keep_the_answers(portal, page):
    team = factories.team_with("Vision", alice="owner")
    data = factories.dataset(team, name="scenes")
    errors = console_errors(page)
    log_in(page, portal, "alice")
    page.goto(portal["url"] + "/projects/new/")
    assert re.search(r"/projects/new/\?draft=[\w-]+&step=basics$", page.url), "the address names the draft"
    page.fill("#id_name", "beach-or-forest")
    page.fill("#id_description", "walked in Chromium")
    page.check("input[name=task][value=classification]")
    page.click("button[value=next]")
    settled(page.locator(f"input[name=dataset][value='{data.pk}']")).check()
    page.click("button[value=next]")
    settled(page.locator("[data-device-search]")).fill("odroid n2")
    page.locator(".device-card:visible").first.click()
    page.click("button[value=next]")
    settled(page.locator("#id_latency_budget_ms"))
    assert page.url.endswith("&step=environment")

    page.reload()
    assert step(page).endswith("Environment & budget"), "the reload redraws the step the user was on"
    assert page.locator("input[type=hidden][name=name]").get_attribute("value") == "beach-or-forest"

    page.go_back()
    settled(page.locator("[data-device-search]"))
    assert step(page).endswith("Target device") and page.locator("input[name=device]:checked").count() == 1
    page.go_back()
    settled(page.locator(f"input[name=dataset][value='{data.pk}']:checked"))
    page.go_back()
    assert settled(page.locator("#id_name")).input_value() == "beach-or-forest"
    assert page.locator("#id_description").input_value() == "walked in Chromium"

    # On from the first step again: the later answers were carried, and Create makes the project.
    page.click("button[value=next]")
    settled(page.locator(f"input[name=dataset][value='{data.pk}']:checked"))
    page.click("button[value=next]")
    settled(page.locator("input[name=device]:checked"))
    page.click("button[value=next]")
    settled(page.locator("#id_latency_budget_ms"))
    page.check("input[name=run_mode][value=step]")
    page.click("button[value=next]")
    settled(page.locator("button[value=create]")).click()
    page.wait_for_url(re.compile(r".*/projects/\d+/$"))
    assert Project.objects.get(name="beach-or-forest").description == "walked in Chromium"
    assert not errors, errors
