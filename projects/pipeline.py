"""The project page's pipeline panel: stage cards with live job consoles, and the actions behind their buttons.

Each action is one htmx POST that calls a job service and answers with the re-rendered panel. The stages are the
registered ones (projects.jobs.registry): this module names none of them.
"""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_POST

from . import demo
from .access import can_change_job, can_edit, projects_for, require_editor, require_job_changer, viewable_jobs_for
from .audit import audit_record
from .jobs.errors import JobNotAllowed, JobNotQueued
from .jobs.http import log_download_response
from .jobs.registry import queue_label, stage_exists, stage_get, stages
from .jobs.selectors import log_lines, pipeline_busy, stage_rows, worker_warning
from .jobs.services import job_cancel, job_enqueue, job_retry, pipeline_start
from .models import RunMode, Task


def pipeline_context(project, user, *, editable: bool | None = None) -> dict:
    """editable: whether the user may change the project, when the caller knows it already (one query less)."""
    editable = can_edit(user, project.team) if editable is None else editable
    rows = stage_rows(project, editable=editable)
    return {
        "project": project,
        "stages": rows,
        "worker_warning": worker_warning(rows),
        "busy": pipeline_busy({row.stage.key: row.job for row in rows if row.job}),
        "can_edit": editable,
        "auto_mode": project.run_mode == RunMode.AUTO,
        "previews": [(stage.key, line) for stage in stages() if (line := stage.preview_line(project))],
    }


def _panel(request, project, error: str = ""):
    context = pipeline_context(project, request.user)
    context["error"] = error
    return render(request, "projects/_pipeline.html", context)


@login_required
def pipeline_panel(request, project_id: int):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    return _panel(request, project)


def _act(request, project, action):
    require_editor(request.user, project.team)
    try:
        action()
    except (JobNotAllowed, JobNotQueued) as exc:
        return _panel(request, project, error=str(exc))
    return _panel(request, project)


@require_POST
@login_required
def stage_run(request, project_id: int, stage_key: str):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    if not stage_exists(stage_key):
        raise Http404("No such stage.")
    return _act(request, project, lambda: job_enqueue(project=project, stage_key=stage_key, user=request.user))


@require_POST
@login_required
def pipeline_run(request, project_id: int):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    return _act(request, project, lambda: pipeline_start(project=project, user=request.user))


def _job(request, job_id: int):
    """A job the user may see: their teams' projects', and for staff the catalog's (404 otherwise)."""
    return get_object_or_404(viewable_jobs_for(request.user).select_related("project", "project__team"), pk=job_id)


def _act_on_job(request, job, action):
    """A project's job answers with its pipeline panel; a catalog job with its stage's panel (the page that shows
    it, e.g. the device page's calibration), the outcome as a message there."""
    if not job.is_catalog:
        return _act(request, job.project, action)
    require_job_changer(request.user, job)
    try:
        action()
    except (JobNotAllowed, JobNotQueued) as exc:
        messages.error(request, str(exc))
    return redirect(_catalog_page(job))


def _catalog_page(job) -> str:
    page = stage_get(job.stage).page if _registered(job.stage) else ""
    return reverse(page) if page else reverse("projects:job_detail", args=[job.pk])


def _registered(stage_key: str) -> bool:
    try:
        stage_get(stage_key)
    except KeyError:
        return False
    return True


@require_POST
@login_required
def job_cancel_view(request, job_id: int):
    job = _job(request, job_id)
    return _act_on_job(request, job, lambda: job_cancel(job=job, user=request.user))


@require_POST
@login_required
def job_retry_view(request, job_id: int):
    job = _job(request, job_id)
    return _act_on_job(request, job, lambda: job_retry(job=job, user=request.user))


@require_POST
@login_required
def demo_start(request):
    """One click: a demo project (the task's, digits by default), created and run automatically by the workers."""
    try:
        project = demo.demo_start(user=request.user, task=request.POST.get("task") or Task.CLASSIFICATION)
    except ValidationError:
        raise Http404("No demo for that task.") from None
    return redirect("projects:detail", pk=project.pk)


@login_required
def job_detail(request, job_id: int):
    job = _job(request, job_id)
    stage = stage_get(job.stage)
    return render(request, "projects/job_detail.html", {
        "job": job, "project": job.project, "stage": stage, "lines": log_lines(job.pk),
        "queue": queue_label(job.queue), "can_edit": can_change_job(request.user, job),
        "back_url": reverse(stage.page) if job.is_catalog and stage.page else "",
    })


@login_required
def job_log_download(request, job_id: int):
    job = _job(request, job_id)
    audit_record(actor=request.user, action="downloaded", target=job, detail="log")
    return log_download_response(job)
