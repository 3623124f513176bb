"""The network editor page. Everything it does after loading goes through the API (/api/architectures/)."""

from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, render

from projects.access import can_edit, projects_for

from .models import Architecture
from .services import NetworkError, base_model_for, chosen_architecture


@login_required
def editor(request, project_id: int):
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    chosen = chosen_architecture(project)
    try:
        base_model = chosen.base_model if chosen else base_model_for(project)
        problem = ""
    except NetworkError as exc:
        base_model, problem = "", str(exc)
    return render(request, "visualizer/editor.html", {
        "project": project, "can_edit": can_edit(request.user, project.team), "base_model": base_model,
        "problem": problem, "chosen": chosen, "versions": Architecture.objects.filter(project=project),
        "start": {"project": project.pk, "base_model": base_model, "edits": chosen.edits if chosen else [],
                  "version": chosen.version if chosen else None},
    })
