"""The project page's pipeline panel: stage cards with live job consoles, and the actions behind their buttons.

Each action is one htmx POST that calls a job service and answers with the re-rendered panel. The stages are the
registered ones (projects.jobs.registry): this module names none of them.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from . import demo
from .access import can_edit, jobs_for, projects_for, require_editor
from .audit import audit_record
from .jobs.errors import JobNotAllowed, JobNotQueued
from .jobs.http import log_download_response
from .jobs.registry import queue_label, stage_exists, stage_get, stages
from .jobs.selectors import log_lines, pipeline_busy, stage_rows, worker_warning
from .jobs.services import job_cancel, job_enqueue, job_retry, pipeline_start
from .models import RunMode, Task


def pipeline_context(project, user) -> dict:
    editable = can_edit(user, project.team)
    rows = stage_rows(project, editable=editable)
    return {
        "project": project,
        "stages": rows,
        "worker_warning": worker_warning(rows),
        "busy": pipeline_busy({row.stage.key: row.job for row in rows if row.job}),
        "can_edit": editable,
        "auto_mode": project.run_mode == RunMode.AUTO,
        "previews": [line for stage in stages() if (line := stage.preview_line(project))],
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


@require_POST
@login_required
def job_cancel_view(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user).select_related("project"), pk=job_id)
    return _act(request, job.project, lambda: job_cancel(job=job, user=request.user))


@require_POST
@login_required
def job_retry_view(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user).select_related("project"), pk=job_id)
    return _act(request, job.project, lambda: job_retry(job=job, user=request.user))


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
    job = get_object_or_404(jobs_for(request.user).select_related("project", "project__device"), pk=job_id)
    return render(request, "projects/job_detail.html", {
        "job": job, "project": job.project, "stage": stage_get(job.stage), "lines": log_lines(job.pk),
        "queue": queue_label(job.queue),
        "can_edit": can_edit(request.user, job.project.team),
    })


@login_required
def job_log_download(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user), pk=job_id)
    audit_record(actor=request.user, action="downloaded", target=job, detail="log")
    return log_download_response(job)
