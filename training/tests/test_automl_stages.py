"""The optional search stages through the job machinery, with their real runners: the supernet search picks a
subnet per catalog device and the chosen one trains like any model; the hyperparameter search's best trial
becomes the training options. Both are adopted with one action, on the page and through the API."""

import pytest
from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from projects.jobs.models import Job, JobStatus
from projects.jobs.registry import pipeline_stages, stage_next
from projects.jobs.runner import job_execute
from projects.jobs.services import job_enqueue, pipeline_start
from projects.models import RunMode
from projects.tests import factories
from projects.tests.stage_runs import run_job, run_stage
from training.models import TrainingRun

User = get_user_model()
# Transactional: the hyperparameter search's study storage reads the database over its own connection.
pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.usefixtures("no_broker")]


@pytest.fixture
def project():
    team = factories.team_with("Vision", alice="owner", bob="editor", carol="viewer")
    project = factories.training_project(team, epochs=1)
    project.options = {**project.options, "nas": {"epochs": 2, "finetune_epochs": 1, "population": 6, "generations": 2},
                       "hpo": {"trials": 3, "epochs": 1}}
    project.save()
    return project


def pipeline_panel(project, username: str) -> str:
    """The project's pipeline panel, where each stage's result is drawn, as that user sees it."""
    client = Client()
    client.force_login(User.objects.get(username=username))
    return client.get(f"/projects/{project.pk}/pipeline/").content.decode()


def test_automatic_mode_leaves_the_optional_searches_out(project):
    assert [s.key for s in pipeline_stages()][:2] == ["recommend", "train"]
    assert stage_next("recommend").key == "train" and stage_next("nas") is None
    project.run_mode = RunMode.AUTO
    assert pipeline_start(project=project).stage == "recommend"


def test_the_supernet_search_picks_a_subnet_per_device_and_the_adopted_one_trains(project):
    nas = run_stage(project, "nas")
    devices = nas.result["devices"]
    assert {d["device"] for d in devices} >= {"Odroid_N2"} and sum(d["project_device"] for d in devices) == 1
    assert all(d["latency_ms"] <= d["budget_ms"] for d in devices if d["fits"])
    assert nas.result["supernet"]["largest_top1"] > 1 / 3
    # The page: the accuracy-against-latency front (one point per device) and a row per device; editors may adopt.
    panel = pipeline_panel(project, "bob")
    assert 'data-testid="nas-devices"' in panel and "Accuracy against predicted latency" in panel
    assert all(f'data-testid="adopt-{d["device"]}"' in panel for d in devices)
    assert 'data-testid="adopt-Odroid_N2"' not in pipeline_panel(project, "carol")

    client = APIClient()
    client.force_authenticate(User.objects.get(username="bob"))
    assert "Run Recommend first" in client.post(f"/api/searches/{nas.pk}/adopt/").content.decode()
    run_stage(project, "recommend")
    client.force_authenticate(User.objects.get(username="carol"))
    assert client.post(f"/api/searches/{nas.pk}/adopt/", {"device": "Odroid_N2"}).status_code == 403
    client.force_authenticate(User.objects.get(username="bob"))
    assert client.post(f"/api/searches/{nas.pk}/adopt/", {"device": "No_Such"}).status_code == 409
    response = client.post(f"/api/searches/{nas.pk}/adopt/", {"device": "Odroid_N2"})
    assert response.status_code == 202 and response.json()["stage"] == "train"
    train = run_job(Job.objects.get(pk=response.json()["id"]))
    chosen = next(d for d in devices if d["device"] == "Odroid_N2")
    assert TrainingRun.objects.get(job=train).model_name == chosen["model"]
    log = "\n".join(train.log_lines.values_list("text", flat=True))
    assert "loaded" in log and "skipped" not in log, "the subnet starts from its inherited weights, every tensor"
    # Then it goes on like any other model: converted, checked, measured and packaged.
    for stage in ("convert", "benchmark", "package"):
        run_stage(project, stage)
    artifacts = project.artifacts.all()
    assert artifacts.filter(kind="bundle").exists()
    assert artifacts.exclude(kind="bundle").filter(status="verified").exists()


def test_the_best_trial_of_a_search_becomes_the_training_options(project):
    run_stage(project, "recommend")
    hpo = run_stage(project, "hpo")
    summary = hpo.result
    assert len(summary["trials"]) == 3 and summary["best"] is not None
    assert [p["trial"] for p in summary["best_curve"]] == sorted(p["trial"] for p in summary["best_curve"])
    # The page: every trial in the table, the best-so-far curve, the importances and the one-click adoption.
    panel = pipeline_panel(project, "bob")
    assert panel.count("<tr", panel.index('data-testid="hpo-trials"')) >= 1 + 3
    assert "Parameter importance" in panel and 'data-testid="adopt-hpo"' in panel
    assert 'data-testid="adopt-hpo"' not in pipeline_panel(project, "carol")

    client = APIClient()
    client.force_authenticate(User.objects.get(username="bob"))
    assert client.get(f"/api/searches/{hpo.pk}/").json()["result"]["best"] == summary["best"]
    assert client.post(f"/api/searches/{hpo.pk}/adopt/").status_code == 202
    project.refresh_from_db()
    assert summary["best"]["params"].items() <= project.options["train"].items()
    assert Job.objects.filter(project=project, stage="train", status=JobStatus.QUEUED).exists()


def test_search_options_are_checked_against_their_bounds(project):
    project.options = {**project.options, "hpo": {"trials": 0}}
    project.save()
    run_stage(project, "recommend")
    job = job_enqueue(project=project, stage_key="hpo")
    job_execute(job_id=job.pk, attempt=job.attempt)
    job.refresh_from_db()
    assert job.status == JobStatus.FAILED and "trials" in job.error and "from 2 to 200" in job.error


@pytest.mark.parametrize("small", [True, False])
def test_subnet_costs_counted_from_the_architecture_equal_the_profilers(small):
    import random

    import torch

    from recommender.profiling import profile_model
    from training.automl import subnet_costs
    from training.engine import supernet as sn

    spec = sn.SupernetSpec(widths=(8, 16, 24), stem_width=8, small_input=small)
    size = 16 if small else 64
    for seed in range(3):
        config = sn.sample(spec, random.Random(seed))
        with torch.device("meta"):
            model = sn.build_subnet(spec, config, 5).eval()
        measured = profile_model(model, size).as_dict()
        counted = subnet_costs(spec, config, num_classes=5, input_size=size).as_dict()
        for field in ("params", "flops", "weight_bytes", "activation_bytes", "peak_activation_bytes", "layers",
                      "ops", "extra"):
            assert counted[field] == measured[field], (field, config)
