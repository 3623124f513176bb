"""In Chromium, as a new staff user: open Devices, find This_Server, start a quick check, watch its console stream
from the real worker, and see predicted against measured latency appear when it ends. A user who is not staff sees
neither the button nor the job. Every wait waits for something the page shows, never a fixed time."""

import re

import pytest

from projects.jobs.models import Job
from projects.tests import factories
from projects.tests.test_browser import log_in
from recommender.models import BenchmarkRecord, Device

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG = 300_000  # ms: three exports and timings on a loaded two-core machine


VIEWPORT = {"width": 1300, "height": 1000}
PAGE_TIMEOUT_MS = 60_000


@pytest.mark.timeout(600)
def test_new_staff_user_measures_this_server_and_sees_predicted_against_measured(portal, page, browser):
    factories.user("erin", is_staff=True)
    factories.user("bob")
    host = Device.objects.get(is_host=True)
    log_in(page, portal, "erin")

    page.get_by_role("link", name="Devices").first.click()
    page.get_by_role("link", name="Open This_Server").click()
    page.wait_for_url(re.compile(rf".*/devices/{host.pk}/$"))
    assert "No measured records yet" in page.locator("[data-testid=device-records]").inner_text()

    page.click("[data-testid=calibrate-quick]")
    job_panel = page.locator("[data-testid=calibration-job]")
    job_panel.wait_for()
    assert page.locator("[data-testid=calibrate-quick]").is_disabled()  # one at a time
    # The console streams the worker's lines as each model is measured.
    page.locator("[data-testid=log-calibrate] .log-line", has_text="px:").first.wait_for(timeout=LONG)
    assert "predicted" in page.locator("[data-testid=log-calibrate]").inner_text()

    # When the job ends, the panel reloads itself: the records, each predicted by the model fitted to the others.
    page.locator("[data-testid=calibration-result]").wait_for(timeout=LONG)
    records = page.locator("[data-testid=device-records]")
    records.locator("table tbody tr").nth(2).wait_for()
    assert records.locator("table tbody tr").count() == 3
    assert "3 records on this device" in records.inner_text()
    assert BenchmarkRecord.objects.filter(device=host, source="calibrate").count() == 3
    job = Job.objects.get(stage="calibrate")
    assert job.status == "succeeded" and job.project is None
    assert page.locator("[data-testid=calibrate-quick]").is_enabled()

    # The full log, from the panel's link.
    page.get_by_role("link", name="Full log").click()
    page.wait_for_url(re.compile(rf".*/jobs/{job.pk}/$"))
    assert "Calibrate this server succeeded." in page.locator("[data-testid=log-full]").inner_text()
    assert page.get_by_role("link", name="← This server").is_visible()

    # Bob is not staff: the records are shared, the calibration is not his to see or start.
    other = browser.new_context().new_page()
    log_in(other, portal, "bob")
    other.goto(f"{portal['url']}/devices/{host.pk}/")
    assert other.locator("[data-testid=calibration]").count() == 0
    assert other.locator("[data-testid=device-records] table tbody tr").count() == 3
    assert other.goto(f"{portal['url']}/jobs/{job.pk}/").status == 404
    other.context.close()
