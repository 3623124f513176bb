"""The project page's pipeline panel: stage cards with live job consoles, and the actions behind their buttons.

Each action is one htmx POST that calls a job service and answers with the re-rendered panel.
"""

from django.contrib.auth.decorators import login_required
from django.core.exceptions import PermissionDenied
from django.http import Http404, StreamingHttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from recommender.services import paper_choice_for

from .access import can_edit, editable_teams_for, jobs_for, projects_for, require_editor
from .jobs import JobNotAllowed, job_cancel, job_enqueue, job_retry, latest_jobs, pipeline_start, stage_blockers
from .models import JobLogLine, RunMode
from .stages import STAGE_BY_KEY, STAGES


def pipeline_context(project, user) -> dict:
    latest = latest_jobs(project)
    editable = can_edit(user, project.team)
    stages = []
    for stage in STAGES:
        job = latest.get(stage.key)
        stages.append({
            "stage": stage,
            "job": job,
            "blockers": stage_blockers(project, stage.key, latest),
            "can_cancel": editable and job is not None and job.is_active,
            "can_retry": editable and job is not None and job.status in ("failed", "cancelled"),
        })
    return {
        "project": project,
        "stages": stages,
        "can_edit": editable,
        "auto_mode": project.run_mode == RunMode.AUTO,
        "table1": paper_choice_for(device=project.device, task=project.task),
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
    except JobNotAllowed as exc:
        return _panel(request, project, error=str(exc))
    return _panel(request, project)


@require_POST
@login_required
def stage_run(request, project_id: int, stage_key: str):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    if stage_key not in STAGE_BY_KEY:
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
    """One click: the digits demo project, created and run automatically by the workers."""
    from .demo import demo_project_create

    if not editable_teams_for(request.user).exists():
        raise PermissionDenied("You need an editor role in a team to create a project.")
    project = demo_project_create(user=request.user)
    pipeline_start(project=project, user=request.user)
    return redirect("projects:detail", pk=project.pk)


@login_required
def job_detail(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user).select_related("project", "project__device"), pk=job_id)
    lines = JobLogLine.objects.filter(job=job).order_by("seq")
    return render(request, "projects/job_detail.html", {
        "job": job, "project": job.project, "stage": STAGE_BY_KEY[job.stage], "lines": lines,
        "can_edit": can_edit(request.user, job.project.team),
    })


@login_required
def job_log_download(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user), pk=job_id)
    lines = JobLogLine.objects.filter(job=job).order_by("seq").values_list("text", flat=True)

    def body():
        for text in lines.iterator(chunk_size=2000):
            yield text + "\n"

    response = StreamingHttpResponse(body(), content_type="text/plain; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="job-{job.pk}-{job.stage}.log"'
    return response


