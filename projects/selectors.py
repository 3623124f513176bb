"""Reads the pages share. Scoping always starts from projects.access, so an outsider's query is empty."""

from django.db.models import QuerySet
from django.db.models.fields.json import KeyTextTransform

from .access import datasets_for, editable_teams_for, projects_for
from .jobs.models import Job, JobStatus
from .jobs.registry import score_keys, stages


def project_list(user) -> QuerySet:
    """The user's projects, newest first (a total order: pages never overlap). Page it, then give the page to
    project_rows_annotate."""
    # The list shows the team's and the device's names, not the dataset (whose row carries its class names).
    return projects_for(user).select_related(None).select_related("team", "device").order_by("-created_at", "-id")


def project_rows_annotate(projects: list) -> list:
    """Each project of a page gets its newest job's `latest_stage`, `latest_stage_label`, `latest_status` and
    `latest_progress`, and its best score (`best_score` 0..1 and `best_score_label`, e.g. "top-1") from the stages
    that declare scores: the first declared score any of its jobs has, at its best. One query for the page.

    (The same figures as subqueries annotated on the list's query cost ~12 ms of CPU per page just to compile,
    about a quarter of the page's cost under load: bench/load.py. Each score is read as the JSON key's text alone;
    which stages count and the conversion to a number are done here: a CASE WHEN … CAST per score, built afresh
    for every page, took half the query's CPU to build and compile.)"""
    keys = score_keys()
    scores = {f"score_{i}": KeyTextTransform(key, "result") for i, (key, _label, _stages) in enumerate(keys)}
    jobs = (Job.objects.filter(project__in=projects).order_by("project_id", "-created_at", "-id")
            .values("project_id", "stage", "status", "progress", **scores))
    newest, best = {}, {}
    for job in jobs:
        newest.setdefault(job["project_id"], job)
        found = best.setdefault(job["project_id"], [None] * len(keys))
        for i, (_key, _label, stage_keys) in enumerate(keys):
            value = _score(job[f"score_{i}"]) if job["stage"] in stage_keys else None
            if value is not None and (found[i] is None or value > found[i]):
                found[i] = value
    labels = {s.key: s.label for s in stages()}
    for project in projects:
        job = newest.get(project.pk, {})
        project.latest_stage, project.latest_status = job.get("stage"), job.get("status")
        project.latest_progress = job.get("progress")
        project.latest_stage_label = labels.get(project.latest_stage, project.latest_stage)
        first = next(((value, keys[i][1]) for i, value in enumerate(best.get(project.pk, ())) if value is not None),
                     (None, ""))
        project.best_score, project.best_score_label = first
    return projects


def _score(text) -> float | None:
    """A score as the database gives a JSON value's text (a number on SQLite); None unless it reads as a number."""
    if text is None or isinstance(text, bool):
        return None
    try:
        return float(text)
    except ValueError:
        return None


def dataset_list(user) -> QuerySet:
    return datasets_for(user).select_related("team")


def can_create_anywhere(user) -> bool:
    """Whether to offer "New …" buttons: the user edits at least one team."""
    return editable_teams_for(user).exists()


IMPORT_FORMATS = {"onnx": "ONNX", "torchscript": "TorchScript"}


def imported_model(project) -> dict | None:
    """{"name", "format", "validation", "accuracy_warning"} of the imported model that is the project's model
    (deployment's import records itself as a succeeded train job whose result says `imported`), or None where the
    newest model was trained here or there is none: the project card says which, instead of "trains from scratch"
    for a model that was never trained here. `validation`: its score on the project's images at import
    (classification); `accuracy_warning`: what to check when that score is at chance level, else None."""
    job = (project.jobs.filter(stage="train", status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id")
           .only("result").first())
    fmt = job and (job.result or {}).get("imported")
    if not fmt:
        return None
    checks = job.result.get("checks") or {}
    return {"name": job.result.get("model", ""), "format": IMPORT_FORMATS.get(fmt, fmt),
            "validation": checks.get("validation"), "accuracy_warning": checks.get("accuracy_warning")}
