import mimetypes

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.http import FileResponse, Http404, HttpResponseRedirect
from django.shortcuts import get_object_or_404, render
from django.urls import reverse
from django.views.decorators.http import require_GET, require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect

from projects.access import can_edit, project_to_change, projects_for, require_editor
from projects.audit import audit_record
from projects.datasets.images import IMAGE_TYPE_NAMES
from projects.jobs.errors import JobNotAllowed
from projects.jobs.storage import absolute
from projects.uploads import upload_page, upload_refusals

from .http import artifact_download_response
from .imports import default_preprocessing, guard_model_upload, model_import
from .selectors import artifacts_for, trials_for
from .trials import MAX_IMAGE_BYTES, MAX_TOP_K, triable_artifacts, trial_create, use_image_upload_handler


@login_required
def artifact_download(request, artifact_id: int):
    artifact = get_object_or_404(artifacts_for(request.user), pk=artifact_id)
    audit_record(actor=request.user, action="downloaded", target=artifact)
    return artifact_download_response(artifact)


# --- Try it ------------------------------------------------------------------------------------------------------


def _may_change_project(user, project_id: int) -> None:
    project_to_change(user, project_id)


@upload_page(use_image_upload_handler, may_upload=_may_change_project)
@require_http_methods(["GET", "POST"])
def try_page(request, project_id: int):
    """The project's Try it page: pick a model, upload an image, see what it answers (and the recent tries)."""
    project = get_object_or_404(projects_for(request.user), pk=project_id)
    errors, status = {}, 200
    if request.method == "POST":  # upload_page has checked the sender may change the project
        try:
            artifact = triable_artifacts(project).filter(pk=_int(request.POST.get("artifact"))).first()
            if artifact is None:
                raise ValidationError({"artifact": "Pick one of this project's models."})
            trial = trial_create(project=project, artifact=artifact, upload=request.FILES.get("image"),
                                 user=request.user, top_k=_int(request.POST.get("top_k"), 3),
                                 too_big="image" in upload_refusals(request))
        except ValidationError as exc:
            errors, status = exc.message_dict, 400
        else:
            url = reverse("deployment:try_page", args=[project.pk]) + f"#trial-{trial.pk}"
            return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)
    return render(request, "deployment/try.html", {
        "project": project, "artifacts": triable_artifacts(project), "trials": trials_for(request.user).filter(
            project=project)[:10], "can_edit": can_edit(request.user, project.team), "errors": errors,
        "max_mb": MAX_IMAGE_BYTES // (1024 * 1024), "image_types": IMAGE_TYPE_NAMES, "max_top_k": MAX_TOP_K,
    }, status=status)


def _int(value, default=None):
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


@login_required
@require_GET
def trial_detail(request, trial_id: int):
    """One try: the fragment the Try it page polls while a worker runs it (htmx), or a page of its own."""
    trial = get_object_or_404(trials_for(request.user), pk=trial_id)
    template = "deployment/_trial.html" if request.htmx else "deployment/trial_detail.html"
    return render(request, template, {"trial": trial, "project": trial.project})


@login_required
@require_GET
def trial_image(request, trial_id: int):
    """The uploaded image, or with ?annotated=1 the detector's boxes drawn on it."""
    trial = get_object_or_404(trials_for(request.user), pk=trial_id)
    relative = trial.annotated_path if request.GET.get("annotated") and trial.annotated_path else trial.image_path
    path = absolute(relative)
    if not path.is_file():
        raise Http404("The image is gone from the server.")
    content_type = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
    return FileResponse(path.open("rb"), content_type=content_type)


# --- Bring your own model ---------------------------------------------------------------------------------------


@upload_page(guard_model_upload, may_upload=_may_change_project)
@require_http_methods(["GET", "POST"])
def model_import_page(request, project_id: int):
    """Import an ONNX or TorchScript model as the project's model (editors and owners)."""
    project = project_to_change(request.user, project_id)
    mean, std = default_preprocessing(project.task)
    values = {"labels": "\n".join(project.dataset.class_names), "input_size": project.input_size,
              "mean": ", ".join(f"{v:g}" for v in mean), "std": ", ".join(f"{v:g}" for v in std)}
    errors, status = {}, 200
    if request.method == "POST":
        values.update({k: request.POST.get(k, "") for k in values})
        try:
            if refusals := upload_refusals(request):
                raise ValidationError(refusals)
            run = model_import(project=project, upload=request.FILES.get("file"), user=request.user,
                               labels=[line for line in values["labels"].splitlines() if line.strip()],
                               input_size=_int(values["input_size"], 0) or None,
                               mean=_numbers(values["mean"]), std=_numbers(values["std"]))
        except ValidationError as exc:
            errors, status = exc.message_dict, 400
        except JobNotAllowed as exc:
            errors, status = {"file": [str(exc)]}, 409
        else:
            warning = run.architecture["checks"].get("accuracy_warning")
            if warning and warning["verdict"] == "too_few":
                messages.info(request, f"Imported {run.architecture['source_name']}: top-1 {warning['top1']:g}% on "
                                       f"{warning['n_images']} of this project's images, too few to tell it from "
                                       f"guessing ({warning['chance']:g}%). Run Optimize & convert next, or add "
                                       "images to judge it.")
            elif warning:
                messages.warning(request, f"Imported {run.architecture['source_name']}: top-1 {warning['top1']:g}% "
                                          f"on this project's images, where guessing scores {warning['chance']:g}%. "
                                          "The likely causes are on the page.")
            else:
                messages.success(request, f"Imported {run.architecture['source_name']}: run Optimize & convert next.")
            return HttpResponseRedirect(reverse("projects:detail", args=[project.pk]))
    return render(request, "deployment/import.html", {"project": project, "values": values, "errors": errors},
                  status=status)


def _numbers(text: str):
    return [part for part in text.replace(";", ",").replace(" ", ",").split(",") if part]


@require_POST
@login_required
def convert_accept_view(request, job_id: int):
    """Accept a conversion that failed its parity check, with a reason; answers with the pipeline panel."""
    from projects.access import jobs_for
    from projects.pipeline import pipeline_context

    from .overrides import convert_accept

    job = get_object_or_404(jobs_for(request.user).select_related("project"), pk=job_id)
    require_editor(request.user, job.project.team)
    error = ""
    try:
        convert_accept(job=job, user=request.user, reason=request.POST.get("reason", ""))
    except JobNotAllowed as exc:
        error = str(exc)
    return render(request, "projects/_pipeline.html", {**pipeline_context(job.project, request.user), "error": error})
