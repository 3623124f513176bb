"""The recommender's pages: the device catalog, a device with its records, and the model choice a project page
posts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from projects import access

from .engine.table1 import RESNET203_NOTE
from .models import Device
from .selectors import device_catalog, device_records_with_errors, error_summary
from .services import paper_choice_for, project_model_choose


@login_required
def device_list(request):
    # The catalog is shared by all teams, so any signed-in user may read it; only staff edit it (in the admin).
    return render(request, "recommender/device_list.html", {"devices": device_catalog()})


@login_required
def device_detail(request, pk: int):
    # The catalog is shared; records are the shared calibration ones plus those of the viewer's teams.
    device = get_object_or_404(Device, pk=pk)
    rows = device_records_with_errors(device=device, teams=access.teams_for(request.user))
    return render(request, "recommender/device_detail.html", {
        "device": device, "rows": rows, "summary": error_summary(rows), "paper": _paper(device),
        "resnet203_note": RESNET203_NOTE})


def _paper(device) -> dict:
    out = {}
    for task in ("detection", "classification"):
        try:
            out[task] = paper_choice_for(device=device, task=task)
        except ValueError:  # no paper device to borrow from
            out[task] = None
    return out

@login_required
@require_POST
def project_model_choose_view(request, project_id: int):
    project = get_object_or_404(access.projects_for(request.user), pk=project_id)
    access.require_editor(request.user, project.team)
    model = request.POST.get("model") or (request.POST.get("pick") if request.POST.get("use_pick") else "")
    try:
        project_model_choose(project=project, model_name=model)
        messages.success(request, f"Training will use {model}.")
    except ValueError as error:
        messages.error(request, str(error))
    return redirect("projects:detail", project.pk)
