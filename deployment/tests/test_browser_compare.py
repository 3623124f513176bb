"""In Chromium: the live Table 2's chart on a project page stays legible with a real table's worth of bars (two
input sizes × every engine and precision): one label per row, none drawn over the next, at a size that reads like
the page's text. Its 520-unit drawing used to be stretched to the card's width with 10-unit rows under 12-unit
labels, so 26 labels were drawn about 25 px tall, each over its neighbours."""

import pytest

from deployment.engine.compare import chart
from projects.jobs.models import JobStatus
from projects.tests import factories
from projects.tests.test_browser import log_in

from .training_runs import job_for

pytestmark = [pytest.mark.browser, pytest.mark.integration, pytest.mark.django_db(transaction=True)]

ROWS = [("PyTorch eager", "fp32", 1.0), ("PyTorch", "fp32", 1.2), ("ONNX Runtime", "fp32", 2.3),
        ("ONNX Runtime", "fp16", 2.3), ("ONNX Runtime", "int8", 3.8), ("OpenVINO", "fp32", 2.5),
        ("OpenVINO", "fp16", 1.5), ("OpenVINO", "bf16", 9.2), ("OpenVINO", "int8", 8.7), ("Apache TVM", "fp32", 0.04),
        ("TensorFlow Lite", "fp32", 1.9), ("TensorFlow Lite", "fp16", 1.9), ("TensorFlow Lite", "int8", 5.5)]


def table(size):
    return {"input_size": size, "rows": [
        {"engine": runtime.lower(), "runtime": runtime, "precision": precision, "asked": precision,
         "speedup_cpu": speedup, "delta": 0.0, "latency_p50_ms": 10 / speedup, "latency_p99_ms": 12 / speedup,
         "metric": 100.0} for runtime, precision, speedup in ROWS]}


VIEWPORT = {"width": 1280, "height": 900}


def test_table_2_chart_draws_every_label_apart_at_text_size(portal, page):
    project = factories.project(factories.team_with("Vision", alice="owner"), name="table-2")
    tables = [table(120), table(240)]
    job = job_for(project, "compare", JobStatus.SUCCEEDED)
    job.result = {"task": "classification", "tables": tables, "chart": chart(tables), "host": "this server",
                  "tolerance": 1.0, "trained_size": 120}
    job.save()

    log_in(page, portal, "alice")
    page.goto(f"{portal['url']}/projects/{project.pk}/")
    labels = page.locator("#stage-compare figure.chart svg g > text:first-child")
    labels.nth(2 * len(ROWS) - 1).wait_for()
    # read in one go: the pipeline panel may be redrawn between two separate reads
    boxes = labels.evaluate_all("texts => texts.map(t => t.getBoundingClientRect())"
                                ".map(r => ({y: r.y, height: r.height}))")
    assert len(boxes) == 2 * len(ROWS)
    assert all(box["height"] <= 20 for box in boxes), f"labels drawn {max(b['height'] for b in boxes):.0f} px tall"
    for above, below in zip(boxes, boxes[1:], strict=False):
        assert above["y"] + above["height"] <= below["y"] + 1, "a label is drawn over the next one"
