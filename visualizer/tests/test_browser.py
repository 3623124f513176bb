"""In Chromium: open ResNet-50 in the network editor, see 16 blocks, unfold one, change a convolution's output
channels, see the error on the next layer, fix it, watch the predicted latency change, save, and train that
version to a finished job."""

import re

import pytest
from django.utils import timezone

from projects.jobs.models import Job, JobStatus
from projects.models import Project
from projects.tests import factories
from training.models import TrainingRun

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

LONG = 240_000  # ms: a loaded machine trains slowly


@pytest.fixture
def page(browser):
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def resnet50_project() -> Project:
    team = factories.team_with("Vision", alice="owner")
    dataset = factories.image_dataset(team, "patterns", per_class=8, val_per_class=2)
    project = factories.project(team, "patterns", dataset=dataset, device=factories.device("Odroid_N2"),
                                input_size=16, options={"model": "resnet50", "train": {
                                    "epochs": 1, "batch_size": 8, "lr": 0.05, "patience": 0,
                                    "quality_gate": False}})  # one epoch: the network trains, not a useful model
    # The recommend stage has run (it is tested with the recommender); the project trains ResNet-50, picked.
    Job.objects.create(project=project, stage="recommend", status=JobStatus.SUCCEEDED, queue="cpu",
                       result={"model": "resnet50"}, finished_at=timezone.now())
    return project


def edit(page, action) -> None:
    """Do something that sends an edit, and wait until the editor shows the API's answer to it."""
    before = int(page.locator("#network-editor").get_attribute("data-version") or 0)
    action()
    page.wait_for_function(f"Number(document.getElementById('network-editor').dataset.version) > {before}",
                           timeout=LONG)


# Browser, web server, worker and a training run on one machine: minutes when the machine is loaded.
@pytest.mark.timeout(900)
def test_edit_resnet50_with_live_costs_save_and_train_it(portal, page):
    from visualizer.assets import ASSETS, present

    missing = [a.name for a in ASSETS if not present(a)]
    assert not missing, f"static/vendor/ lacks {missing}: run `python -m visualizer.assets` (./tango test does)"
    project = resnet50_project()
    page.goto(portal["url"] + "/accounts/login/")
    page.fill("input[name=username]", "alice")
    page.fill("input[name=password]", "pw-alice")
    page.click("button[type=submit], input[type=submit]")
    page.wait_for_url(re.compile(r".*/$"))

    page.goto(f"{portal['url']}/projects/{project.pk}/")
    page.click("[data-testid=page-network]")
    page.wait_for_selector("#network-editor[data-ready='1']", timeout=LONG)

    # Folded by default: 16 bottleneck blocks, drawn and listed.
    assert page.evaluate("networkEditor.cy.nodes('.folded').length") == 16
    assert page.locator("#network-outline [data-block]").count() == 16
    latency = page.locator("[data-testid=cost-latency]")
    before = float(latency.inner_text().split(" ms")[0])

    page.click("[data-testid='block-layer3.1']")  # unfold one block: its layers appear
    assert page.evaluate("networkEditor.cy.nodes('.open').length") == 1
    assert page.evaluate("networkEditor.cy.nodes('.folded').length") == 15
    page.click("[data-testid='layer-layer3.1.conv1']")
    page.fill("[data-testid=param-out_channels]", "128")
    edit(page, lambda: page.click("[data-testid=apply-layer]"))
    errors = page.locator("[data-testid=network-errors]")
    assert errors.inner_text().strip() == "layer3.1.bn1 expects 256 channels, gets 128"
    assert latency.inner_text() == "—"  # no prediction for a network that does not fit together
    assert page.locator("[data-testid=save-network]").is_disabled()

    # Fix it: carry the new width to the layers this convolution feeds.
    edit(page, lambda: page.click("[data-testid=resize-layer]"))
    assert errors.inner_text().strip() == ""
    after = float(latency.inner_text().split(" ms")[0])
    assert after < before
    assert "~ layer3.1.conv2: in_channels 256 → 128" in page.locator("[data-testid=network-changes]").inner_text()

    # A layer from the palette, dropped on a node of the outline; undone and redone.
    edit(page, lambda: page.drag_and_drop("[data-testid=palette-Dropout]", "[data-testid='layer-layer3.1.relu']"))
    assert "+ layer3.1.dropout_1 (Dropout)" in page.locator("[data-testid=network-changes]").inner_text()
    edit(page, lambda: page.click("[data-testid=undo]"))
    assert "dropout_1" not in page.locator("[data-testid=network-changes]").inner_text()
    edit(page, lambda: page.click("[data-testid=redo]"))
    assert "dropout_1" in page.locator("[data-testid=network-changes]").inner_text()

    page.click("[data-testid=save-network]")
    page.get_by_text("Saved version 1: the train stage trains it.").wait_for(timeout=LONG)

    page.goto(f"{portal['url']}/projects/{project.pk}/")
    page.locator("[data-testid=run-train]:not([disabled])").click(timeout=LONG)
    train_log = page.locator("[data-testid=log-train]")
    try:
        train_log.get_by_text(re.compile(r"^Network version 1 from the editor")).wait_for(timeout=LONG)
        page.locator("#stage-train .badge").get_by_text("succeeded").wait_for(timeout=2 * LONG)
    except Exception:
        job = Job.objects.filter(project=project, stage="train").first()
        print("JOB:", job and (job.status, job.error, list(job.log_lines.values_list("text", flat=True))[-15:]))
        print("PAGE:", page.locator("#stage-train").inner_text())
        print("WORKER:", portal["worker"].output()[-3000:])
        raise
    run = TrainingRun.objects.get(project=project)
    graph = run.architecture["network"]["graph"]
    conv = next(n for n in graph["nodes"] if n.get("target") == "layer3.1.conv1")
    assert conv["params"]["out_channels"] == 128 and run.architecture["network"]["version"] == 1
