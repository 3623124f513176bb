"""Pages. Each view: load through projects.access, check the role, call one service, render.

htmx requests get the fragment they swap; plain requests get the whole page, so every form also works without JS.
"""

from urllib.parse import urlencode

from django.contrib import messages
from django.contrib.auth.decorators import login_required
from django.core.exceptions import ValidationError
from django.core.paginator import Paginator
from django.http import HttpResponseRedirect
from django.shortcuts import get_object_or_404, redirect, render
from django.urls import reverse
from django.views.decorators.http import require_http_methods, require_POST
from django_htmx.http import HttpResponseClientRedirect, push_url, replace_url

from tango_common.engines import ENGINES

from .access import EDIT_ROLES, memberships_for, project_to_change, projects_for, require_editor_somewhere, role_among
from .commands import demo_tasks
from .dataset_stats import dataset_summary
from .datasets.samples import dataset_thumbnails
from .forms import DatasetUploadForm, ProjectEditForm, attach_errors, attach_refusals
from .jobs.errors import JobNotAllowed
from .pipeline import pipeline_context
from .selectors import can_create_anywhere, dataset_list, imported_model, project_list, project_rows_annotate
from .services import (
    dataset_create,
    guard_dataset_upload,
    guard_weights_upload,
    project_delete,
    project_update,
    project_weights_clear,
    project_weights_set,
)
from .uploads import upload_page, upload_refusals
from .wizard import Drafts, ProjectWizard


def _redirect(request, url: str):
    """After a successful htmx POST the whole page moves on, not just the swapped fragment."""
    return HttpResponseClientRedirect(url) if request.htmx else HttpResponseRedirect(url)


def _bound(request) -> tuple:
    """Form data for a POST; nothing for a GET (so the form is unbound and shows no errors)."""
    return (request.POST, request.FILES) if request.method == "POST" else ()


# --- projects ----------------------------------------------------------------------------------------------------


PROJECTS_PER_PAGE = 25


@login_required
def project_list_view(request):
    # Paged: a team with hundreds of projects gets a page that renders in one bounded query.
    page = Paginator(project_list(request.user), PROJECTS_PER_PAGE).get_page(request.GET.get("page"))
    page.object_list = project_rows_annotate(list(page.object_list))
    memberships = memberships_for(request.user)  # the header's list; "New" buttons for an editor of any team
    return render(request, "projects/project_list.html", {
        "projects": page, "can_create": any(m.role in EDIT_ROLES for m in memberships),
        "user_memberships": memberships,
        "demo_tasks": demo_tasks(),  # the demos the installed apps registered (detection: training)
    })


@login_required
def project_detail(request, pk: int):
    project = get_object_or_404(projects_for(request.user), pk=pk)
    return render(request, "projects/project_detail.html", _project_page_context(request, project))


def _project_page_context(request, project) -> dict:
    engine = ENGINES.get(project.engine)
    memberships = memberships_for(request.user)  # the header's list, and the user's role in the project's team
    role = role_among(memberships, project.team)
    context = {"project": project, "role": role, "can_edit": role in EDIT_ROLES, "user_memberships": memberships,
               "engine_label": engine.label if engine else "", "imported": imported_model(project)}
    context.update(pipeline_context(project, request.user, editable=role in EDIT_ROLES))
    return context


@upload_page(guard_weights_upload, may_upload=project_to_change)
@require_POST
def project_weights(request, pk: int):
    """Upload (or clear) the project's pretrained weights; a refused file re-renders the page with the reason."""
    project = project_to_change(request.user, pk)
    try:
        if request.POST.get("clear"):
            project_weights_clear(project=project)
        elif refusals := upload_refusals(request):
            raise ValidationError(refusals)
        elif "file" not in request.FILES:
            raise ValidationError({"file": "Choose a .pt or .pth file."})
        else:
            project_weights_set(project=project, upload=request.FILES["file"])
    except ValidationError as exc:
        project.refresh_from_db()
        context = _project_page_context(request, project)
        context["weights_error"] = " ".join(m for ms in exc.message_dict.values() for m in ms)
        return render(request, "projects/project_detail.html", context, status=400)
    return redirect("projects:detail", pk=project.pk)


@login_required
@require_http_methods(["GET", "POST"])
def project_edit(request, pk: int):
    project = project_to_change(request.user, pk)
    if request.POST.get("action") == "refresh":  # the device or engine changed: redraw what it offers, save nothing
        form = ProjectEditForm(initial=request.POST.dict(), instance=project, refresh=True)
        return render(request, "projects/_project_form.html", {"project": project, "form": form})
    form = ProjectEditForm(*_bound(request), instance=project)
    if request.method == "POST" and form.is_valid():
        try:
            project_update(project=project, **form.changes())
        except ValidationError as exc:
            attach_errors(form, exc)
        else:
            messages.success(request, f"Saved {project.name}.")
            return _redirect(request, reverse("projects:detail", args=[project.pk]))
    template = "projects/_project_form.html" if request.htmx else "projects/project_edit.html"
    return render(request, template, {"project": project, "form": form})


@login_required
@require_POST
def project_delete_view(request, pk: int):
    """Delete the project and its files; a running job or a missing confirmation re-renders the edit page."""
    project = project_to_change(request.user, pk)
    try:
        if not request.POST.get("confirm"):
            raise JobNotAllowed("Tick the box to confirm: the project's jobs, models and files go for good.")
        project_delete(project=project, user=request.user)
    except JobNotAllowed as exc:
        return render(request, "projects/project_edit.html", {
            "project": project, "form": ProjectEditForm(instance=project), "delete_error": str(exc)}, status=409)
    messages.success(request, f"Deleted {project.name}.")
    return redirect("projects:list")


@upload_page(guard_dataset_upload, may_upload=require_editor_somewhere)  # the dataset step's upload
@require_http_methods(["GET", "POST"])
def project_create_view(request):
    require_editor_somewhere(request.user)
    drafts = Drafts(request.session)
    draft = Drafts.valid_id(request.POST.get("draft") or request.GET.get("draft")) or Drafts.new_id()
    if request.method == "POST":
        wizard = ProjectWizard(request.user, request.POST, request.FILES, refusals=upload_refusals(request))
        page = wizard.submit()
        if page.created:
            drafts.drop(draft)
            messages.success(request, f"Created {page.created.name}. {page.started}".strip())
            return _redirect(request, reverse("projects:detail", args=[page.created.pk]))
        drafts.save(draft, step=page.step.key, answers=wizard.answers())
    else:
        page = drafts.page(request.user, draft, request.GET.get("step")) or ProjectWizard(request.user).start()
    page.draft = draft
    # A step of its own in the browser's history (Back goes to the step before); a redraw of the same step replaces
    # its entry. The page itself puts its URL in place on a full load (tango.js: data-wizard-url).
    page.url = f"{reverse('projects:create')}?{urlencode({'draft': draft, 'step': page.step.key})}"
    # Back to a step is a "history restore": htmx asks for the whole page, as the wizard keeps no snapshot.
    partial = request.htmx and not request.htmx.history_restore_request
    response = render(request, "projects/_wizard.html" if partial else "projects/project_create.html",
                      {"page": page})
    if partial:
        moved = request.POST.get("step") != page.step.key
        response = (push_url if moved else replace_url)(response, page.url)
    return response


# --- datasets ----------------------------------------------------------------------------------------------------


@login_required
def dataset_list_view(request):
    return render(request, "projects/dataset_list.html", {
        "datasets": dataset_list(request.user), "can_create": can_create_anywhere(request.user),
    })


@login_required
def dataset_detail(request, pk: int):
    dataset = get_object_or_404(dataset_list(request.user), pk=pk)
    return render(request, "projects/dataset_detail.html", {
        "dataset": dataset, "summary": dataset_summary(dataset.stats),
        "thumbnails": dataset_thumbnails(dataset.root, dataset.task, dataset.class_names),
        "projects": projects_for(request.user).filter(dataset=dataset),
    })


@upload_page(guard_dataset_upload, may_upload=require_editor_somewhere)
@require_http_methods(["GET", "POST"])
def dataset_upload(request):
    require_editor_somewhere(request.user)
    form = DatasetUploadForm(*_bound(request), user=request.user, initial=request.GET.dict())
    if request.method == "POST":
        attach_refusals(form, upload_refusals(request))
    if request.method == "POST" and form.is_valid():
        try:
            dataset = dataset_create(user=request.user, upload=form.cleaned_data["file"],
                                     **{k: form.cleaned_data[k] for k in ("team", "name", "task")})
        except ValidationError as exc:
            attach_errors(form, exc)
        else:
            messages.success(request, f"Uploaded {dataset.name}: {dataset.num_images} images.")
            return _redirect(request, reverse("projects:dataset_detail", args=[dataset.pk]))
    template = "projects/_dataset_upload_form.html" if request.htmx else "projects/dataset_upload.html"
    return render(request, template, {"form": form})
