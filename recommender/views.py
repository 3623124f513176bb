"""The recommender's pages: the device catalog, a device with its records (and, on this server's page, staff's
calibration job), and the model choice a project page posts."""

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import get_object_or_404, redirect, render
from django.views.decorators.http import require_POST

from projects import access
from projects.jobs.errors import JobNotAllowed, JobNotQueued

from .engine.table1 import RESNET203_NOTE
from .models import Device
from .selectors import device_catalog, device_records_with_errors, error_summary, host_device, latest_calibration
from .services import calibration_start, model_label, paper_choice_for, project_model_choose


@login_required
def device_list(request):
    # The catalog is shared by all teams, so any signed-in user may read it; only staff edit it (in the admin).
    return render(request, "recommender/device_list.html", {"devices": device_catalog()})


@login_required
def device_detail(request, pk: int):
    device = get_object_or_404(Device, pk=pk)
    context = _measurements(request, device)
    context.update(paper=_paper(device), resnet203_note=RESNET203_NOTE)
    return render(request, "recommender/device_detail.html", context)


def _measurements(request, device) -> dict:
    """The device page's measurements panel (#catalog-panel): predicted against measured latency for its records
    (the shared calibration ones and those of the viewer's teams), and on this server's page, for staff, the
    calibration job with its live console."""
    rows = device_records_with_errors(device=device, teams=access.teams_for(request.user))
    staff = request.user.is_staff
    return {"device": device, "rows": rows, "summary": error_summary(rows),
            "can_calibrate": staff and device.is_host,
            "calibration": latest_calibration(request.user) if staff and device.is_host else None}


def _paper(device) -> dict:
    out = {}
    for task in ("detection", "classification"):
        try:
            out[task] = paper_choice_for(device=device, task=task)
        except ValueError:  # no paper device to borrow from
            out[task] = None
    return out


def _panel(request, device):
    """htmx gets the measurements panel; a plain request (no JavaScript) the device page."""
    if request.htmx:
        return render(request, "recommender/_measurements.html", {**_measurements(request, device), "fragment": True})
    return redirect("recommender:device_detail", device.pk)


@login_required
@require_POST
def device_calibrate(request, pk: int):
    """Staff start the calibration job: this server times a spread of candidates and stores the records."""
    access.require_staff(request.user)
    device = get_object_or_404(Device, pk=pk)
    try:
        calibration_start(device=device, quick=bool(request.POST.get("quick")), user=request.user)
    except (JobNotAllowed, JobNotQueued) as exc:
        messages.error(request, str(exc))
    return _panel(request, device)


@login_required
def host_measurements(request):
    """This server's measurements panel: where its calibration job's console reloads from when the job ends."""
    device = host_device()
    if device is None:
        raise Http404("This server is not in the catalog yet: run `manage.py tango setup`.")
    return _panel(request, device)


@login_required
@require_POST
def project_model_choose_view(request, project_id: int):
    project = get_object_or_404(access.projects_for(request.user), pk=project_id)
    access.require_editor(request.user, project.team)
    model = request.POST.get("model") or (request.POST.get("pick") if request.POST.get("use_pick") else "")
    try:
        project_model_choose(project=project, model_name=model)
        messages.success(request, f"Training will use {model_label(model)}.")
    except ValueError as error:
        messages.error(request, str(error))
    return redirect("projects:detail", project.pk)
