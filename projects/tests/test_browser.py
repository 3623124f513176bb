"""In Chromium: a member runs a stage and watches its console and progress bar update without reloading."""

import re

import pytest

from projects.jobs.models import JobLogLine
from projects.tests import factories
from projects.tests.browsing import settled

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]


def log_in(page, portal, username):
    page.goto(portal["url"] + "/accounts/login/")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", "pw-" + username)
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))


def test_running_a_stage_streams_its_log_and_progress_and_the_history_survives_a_reload(portal, page):
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team, name="patterns", epochs=3)
    log_in(page, portal, "alice")
    page.goto(f"{portal['url']}/projects/{project.pk}/")

    page.click("[data-testid=run-recommend]")
    recommend_log = page.locator("[data-testid=log-recommend]")
    recommend_log.get_by_text("Training will use ResNet-18, picked on the project.").wait_for(timeout=60_000)
    page.locator("#stage-recommend .badge").get_by_text("succeeded").wait_for(timeout=30_000)

    # The panel reloaded itself when the job ended, so Train can now be started from the same page.
    settled(page.locator("[data-testid=run-train]:not([disabled])"), timeout=30_000).click()
    train_log = page.locator("[data-testid=log-train]")
    try:
        # The first epoch's summary line; the progress lines within the epoch also start "epoch 1/3 ", and whether
        # one is printed depends on timing, so a looser pattern can match two lines (Playwright's strict mode).
        train_log.get_by_text(re.compile(r"^epoch 1/3 +train loss")).wait_for(timeout=120_000)
    except Exception:
        print("PAGE:", page.locator("#stage-train").inner_text())
        print("DB:", list(JobLogLine.objects.filter(job__stage="train").values_list("text", flat=True)))
        print("WORKER:", portal["worker"].output()[-3000:])
        raise
    # The progress bar moved while we watched, and the curves are drawn once the first epoch has ended: as long a
    # wait as the training's, on a loaded machine. After one
    # epoch a curve is a single point, which Chromium does not count as visible: wait for it to be in the page.
    bar = page.locator("#stage-train .progress")
    assert int(bar.get_attribute("aria-valuenow")) > 0
    page.locator("#stage-train figure.chart svg polyline").first.wait_for(state="attached", timeout=180_000)
    page.locator("#stage-train .badge").get_by_text("succeeded").wait_for(timeout=180_000)

    seqs = [int(s) for s in train_log.locator(".log-line").evaluate_all("els => els.map(e => e.dataset.seq)")]
    assert seqs == sorted(set(seqs)), "lines in order, none twice"

    page.reload()
    history = page.locator("[data-testid=log-train]")
    history.get_by_text("Train succeeded.").wait_for(timeout=30_000)
    job = project.jobs.get(stage="train")
    assert history.locator(".log-line").count() == JobLogLine.objects.filter(job=job).count()
    assert page.locator("#stage-train table.confusion-matrix").count() == 1


def test_a_detection_project_says_how_long_training_will_take_once_the_worker_has_timed_it(portal, page):
    from training.tests.test_detection_stage import detection_project

    project = detection_project(factories.team_with("Vision", alice="owner"))
    log_in(page, portal, "alice")
    page.goto(f"{portal['url']}/projects/{project.pk}/")
    assert page.locator("[data-testid=preview-train]").count() == 0, "nothing to go on before Recommend"

    page.click("[data-testid=run-recommend]")
    timed = re.compile(r"^Timed YOLO11n at 64 px, batch 4, on this worker \(\d+\.\d\d M parameters\): ")
    page.locator("[data-testid=log-recommend]").get_by_text(timed).wait_for(timeout=120_000)
    page.locator("#stage-recommend .badge").get_by_text("succeeded").wait_for(timeout=30_000)
    estimate = settled(page.locator("[data-testid=preview-train]"), timeout=30_000).inner_text()
    assert re.match(r"Training YOLO11n at 64 px for up to 1 epoch \(set on the project\) should take about \d+ s on "
                    r"this server: \d+\.\d s per epoch for 8 training and 4 validation images", estimate), estimate

    settled(page.locator("[data-testid=run-train]:not([disabled])"), timeout=30_000).click()
    page.locator("#stage-train .badge").get_by_text("succeeded").wait_for(timeout=180_000)
