"""Pages of the training app: carrying a finished search into training."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render
from django.views.decorators.http import require_POST

from projects.access import jobs_for, require_editor
from projects.jobs.errors import JobNotAllowed
from projects.pipeline import pipeline_context

from .automl import search_adopt


@require_POST
@login_required
def search_adopt_view(request, job_id: int):
    job = get_object_or_404(jobs_for(request.user).select_related("project"), pk=job_id)
    require_editor(request.user, job.project.team)
    error = ""
    try:
        search_adopt(job=job, user=request.user, device_name=request.POST.get("device") or None)
    except JobNotAllowed as exc:
        error = str(exc)
    return render(request, "projects/_pipeline.html", {**pipeline_context(job.project, request.user), "error": error})
