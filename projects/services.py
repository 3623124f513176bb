"""Writes for teams, datasets and projects. Callers check access first (projects.access)."""

import contextlib
import logging
import shutil
import tempfile
import uuid
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import IntegrityError, transaction

from tango_common.hashing import sha256_file
from tango_common.options import OptionsError, check_options
from tango_common.weights import read_state_dict

from .audit import audit_record
from .engine_support import engine_choice_problem, precision_choice_problem
from .jobs.errors import JobNotAllowed
from .jobs.registry import options_schema
from .jobs.selectors import active_job_exists
from .jobs.storage import project_dir, relative, storage_problem
from .models import Dataset, Membership, Project, Role, RunMode, Team

log = logging.getLogger(__name__)


def team_create(*, name: str, owner) -> Team:
    with transaction.atomic():
        team = Team.objects.create(name=name)
        Membership.objects.create(team=team, user=owner, role=Role.OWNER)
        audit_record(actor=owner, action="created", target=team)
    return team


def membership_set(*, team: Team, user, role: str, actor=None) -> Membership:
    """Add `user` to the team or change their role; `actor` (who did it) goes to the audit log."""
    if role not in Role.values:
        raise ValidationError({"role": f"Unknown role {role!r}."})
    if role != Role.OWNER:
        _keep_an_owner(team=team, user=user)
    before = Membership.objects.filter(team=team, user=user).values_list("role", flat=True).first()
    membership, _ = Membership.objects.update_or_create(team=team, user=user, defaults={"role": role})
    if before != role:
        audit_record(actor=actor, action="role_changed", target=user, team=team,
                     detail=f"{before or 'not a member'} → {role}")
    return membership


def membership_remove(*, team: Team, user, actor=None) -> None:
    _keep_an_owner(team=team, user=user)
    Membership.objects.filter(team=team, user=user).delete()
    audit_record(actor=actor, action="member_removed", target=user, team=team)


def _keep_an_owner(*, team: Team, user) -> None:
    """A team without an owner could never be managed again."""
    others = team.memberships.filter(role=Role.OWNER).exclude(user=user)
    if team.memberships.filter(user=user, role=Role.OWNER).exists() and not others.exists():
        raise ValidationError({"role": "A team needs at least one owner; make someone else owner first."})


def upload_limits():
    from .datasets import Limits

    return Limits(
        max_archive_bytes=settings.TANGO_UPLOAD_MAX_BYTES,
        max_files=settings.TANGO_UPLOAD_MAX_FILES,
        max_unpacked_bytes=settings.TANGO_UPLOAD_MAX_UNPACKED_BYTES,
        max_ratio=settings.TANGO_UPLOAD_MAX_RATIO,
    )


DATASET_SUFFIXES = (".zip",)
WRONG_DATASET = "{name} is not a .zip archive; zip the dataset's folder and upload that."


def guard_dataset_upload(request) -> None:
    """Before the body is read: a dataset that is not named .zip, or is over the limit, is refused as it streams in,
    before Django keeps a byte of it (projects.uploads); the views read why with upload_refusals. What is inside the
    zip is dataset_create's to check."""
    from .uploads import guard_uploads

    limit = settings.TANGO_UPLOAD_MAX_BYTES
    guard_uploads(request, suffixes=DATASET_SUFFIXES, wrong_name=WRONG_DATASET, limit=limit,
                  too_big=f"The archive is over the {limit}-byte limit.")


def dataset_create(*, team: Team, name: str, task: str, upload, user=None) -> Dataset:
    """Validate an uploaded zip (a Django UploadedFile or an open binary file) and keep it as a dataset.

    The archive is checked before anything is unpacked, and unpacked only under the dataset's own folder;
    a rejected upload leaves nothing behind. Raises ValidationError with the validator's message.
    """
    from .datasets import DatasetError, dataset_import

    if Dataset.objects.filter(team=team, name=name).exists():
        raise ValidationError({"name": f"The team already has a dataset named {name!r}."})
    size = getattr(upload, "size", None)
    if size is not None and size > settings.TANGO_UPLOAD_MAX_BYTES:
        raise ValidationError({"file": f"The archive is {size} bytes; the limit is {settings.TANGO_UPLOAD_MAX_BYTES}."})
    relative = Path("datasets") / f"team-{team.pk}" / uuid.uuid4().hex
    dest = Path(settings.MEDIA_ROOT) / relative
    try:
        dest.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=dest.parent, suffix=".zip.part") as spool:
            for chunk in _chunks(upload):
                spool.write(chunk)
            spool.flush()
            try:
                report = dataset_import(Path(spool.name), dest, task, upload_limits())
            except DatasetError as exc:
                raise ValidationError({"file": str(exc)}) from None
            sha256 = sha256_file(Path(spool.name))
    except OSError as exc:
        # dataset_import renames a finished tree into place, so a failed write leaves no half dataset behind.
        shutil.rmtree(dest, ignore_errors=True)
        raise ValidationError({"file": storage_error_message(exc)}) from None
    try:
        dataset = Dataset.objects.create(
            team=team, name=name, task=task, path=str(relative), class_names=report.class_names,
            stats=report.as_dict(), num_images=report.num_images, size_bytes=report.size_bytes, sha256=sha256,
            created_by=user,
        )
        audit_record(actor=user, action="created", target=dataset, detail=f"{dataset.num_images} images")
        return dataset
    except IntegrityError:
        shutil.rmtree(dest, ignore_errors=True)
        raise ValidationError({"name": f"The team already has a dataset named {name!r}."}) from None


def storage_error_message(exc: OSError) -> str:
    """What to tell a user whose upload the server could not write (no paths: they are the server's business)."""
    log.error("Could not store an upload: %s", exc)
    reason = storage_problem(exc) or "the server could not write it"
    return f"The upload could not be stored: {reason}. Nothing was kept; tell an administrator."


def upload_spool_dir() -> Path:
    """Where uploads are written while they are checked; on MEDIA_ROOT's filesystem, so keeping one is a rename."""
    path = Path(settings.MEDIA_ROOT) / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _chunks(upload):
    """An upload's bytes in blocks: a Django UploadedFile, or any open binary file (the demo, scripts)."""
    return upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1 << 20), b"")


def dataset_delete(*, dataset: Dataset, user=None) -> None:
    if dataset.projects.exists():
        raise ValidationError("Projects use this dataset; delete them first.")
    root = dataset.root
    audit_record(actor=user, action="deleted", target=dataset)
    dataset.delete()
    shutil.rmtree(root, ignore_errors=True)


PROJECT_FIELDS = (
    "name", "description", "task", "dataset", "device", "engine", "precision", "input_size",
    "latency_budget_ms", "memory_limit_mb", "run_mode", "options",
)


def project_validate(project: Project) -> None:
    """The cross-field rules every form and API serializer share."""
    errors: dict[str, str] = {}
    if project.dataset_id and project.dataset.team_id != project.team_id:
        errors["dataset"] = "The dataset belongs to another team."
    elif project.dataset_id and project.dataset.task != project.task:
        errors["dataset"] = f"This is a {project.dataset.get_task_display().lower()} dataset; the project's task is " \
                            f"{project.get_task_display().lower()}."
    if project.device_id:
        # The engine and precision rules are the wizard's too (projects.engine_support): what it shows disabled,
        # with its reason, is refused here with the same words.
        if not project.device.is_active:
            errors["device"] = "This device is retired from the catalog."
        elif problem := engine_choice_problem(task=project.task, device=project.device, engine=project.engine):
            errors["engine"] = problem
        elif problem := precision_choice_problem(task=project.task, engine=project.engine,
                                                 precision=project.precision):
            errors["precision"] = problem
        if project.memory_limit_mb is not None and project.memory_limit_mb > project.device.memory_mb:
            errors["memory_limit_mb"] = (f"{project.device.name} has {project.device.memory_mb} MiB; the limit "
                                         f"must be at most that (leave it empty to use all of it).")
    if not 8 <= (project.input_size or 0) <= 2048:
        errors["input_size"] = "Input size must be between 8 and 2048 pixels."
    if project.latency_budget_ms is not None and project.latency_budget_ms <= 0:
        errors["latency_budget_ms"] = "The latency budget must be positive."
    if project.memory_limit_mb is not None and project.memory_limit_mb < 1:
        errors["memory_limit_mb"] = "The memory limit must be at least 1 MiB."
    try:
        project.options = check_options(project.options, options_schema(), task=project.task)
    except OptionsError as exc:
        errors["options"] = f"Options not accepted: {exc}."
    if errors:
        raise ValidationError(errors)


def project_draft(*, team: Team, user=None, **fields) -> Project:
    """The project these fields make, unsaved: defaults filled in, every rule checked (ValidationError)."""
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown project fields: {sorted(unknown)}")
    project = Project(team=team, created_by=user, **fields)
    if fields.get("input_size") is None and project.dataset_id:  # left out: the dataset's own size, never enlarged
        from .dataset_stats import image_side, suggested_input_size

        project.input_size = suggested_input_size(image_side(project.dataset.stats), project.task)
    if project.latency_budget_ms is None and project.device_id:
        project.latency_budget_ms = project.device.default_latency_budget_ms
    project_validate(project)
    if Project.objects.filter(team=team, name=project.name).exists():
        raise ValidationError({"name": f"The team already has a project named {project.name!r}."})
    return project


def project_create(*, team: Team, user=None, **fields) -> Project:
    project = project_draft(team=team, user=user, **fields)
    project.save()
    audit_record(actor=user, action="created", target=project)
    return project


def project_review(project: Project) -> tuple[str, list[str]]:
    """What the wizard's Review step (and `POST /api/projects/review/`) says before Create: the model the recommend
    stage would pick, in words ("" when the catalog offers no preview), and warnings about the data and the pick."""
    from .dataset_stats import dataset_warnings
    from .devices import device_catalog

    model, warnings = "", []
    if (preview := device_catalog().pick_preview) is not None:
        pick = preview(device=project.device, task=project.task, engine=project.engine, precision=project.precision,
                       input_size=project.input_size,
                       latency_budget_ms=project.latency_budget_ms or project.device.default_latency_budget_ms,
                       memory_limit_mb=project.memory_limit_mb, dataset=project.dataset, team=project.team)
        model, warnings = pick.line, list(pick.warnings)
    return model, [*warnings, *dataset_warnings(project.dataset.stats, input_size=project.input_size)]


def project_start_if_automatic(*, project: Project, user=None) -> str:
    """Automatic mode runs as soon as the project exists: queue its pipeline. Returns what happened, in words. A
    broker that refuses the job leaves it failed with the reason, which the project page shows."""
    from .jobs.errors import JobNotQueued
    from .jobs.registry import stage_get
    from .jobs.services import pipeline_start

    if project.run_mode != RunMode.AUTO:
        return ""
    try:
        job = pipeline_start(project=project, user=user)
    except (JobNotAllowed, JobNotQueued) as exc:
        return f"The pipeline did not start: {exc}"
    return f"Automatic mode: {stage_get(job.stage).label} is queued; each stage that succeeds queues the next."


def project_update(*, project: Project, **fields) -> Project:
    unknown = set(fields) - set(PROJECT_FIELDS)
    if unknown:
        raise TypeError(f"Unknown project fields: {sorted(unknown)}")
    for key, value in fields.items():
        setattr(project, key, value)
    project_validate(project)
    if Project.objects.filter(team=project.team, name=project.name).exclude(pk=project.pk).exists():
        raise ValidationError({"name": f"The team already has a project named {project.name!r}."})
    project.save()
    return project


def project_delete(*, project: Project, user=None) -> None:
    """Delete the project with its jobs, logs and artifacts (the rows cascade) and every file it owns on disk."""
    if active_job_exists(project):
        raise JobNotAllowed("A job of this project is queued or running; cancel it first.")
    folder = project_dir(project.pk)
    audit_record(actor=user, action="deleted", target=project)
    project.delete()
    shutil.rmtree(folder, ignore_errors=True)


WEIGHTS_SUFFIXES = (".pt", ".pth")
WRONG_WEIGHTS = "Weights must be a PyTorch state dict saved as .pt or .pth."


def guard_weights_upload(request) -> None:
    """Before the body is read: a file not named as weights, or over the limit, is refused as it streams in, before
    Django keeps a byte of it (projects.uploads); the views read why with upload_refusals."""
    from .uploads import guard_uploads

    limit = settings.TANGO_WEIGHTS_MAX_BYTES
    guard_uploads(request, suffixes=WEIGHTS_SUFFIXES, wrong_name=WRONG_WEIGHTS, limit=limit,
                  too_big=f"The file is over the {limit}-byte limit.")


def project_weights_set(*, project: Project, upload) -> Project:
    """Keep a user's pretrained weights for transfer learning; training starts from them.

    Checked before it is kept: the name's suffix, the size, and that torch reads it as a state dict without
    running pickled code (weights_only). A refused file leaves nothing behind.
    """
    name = Path(getattr(upload, "name", "") or "").name
    if not name.lower().endswith(WEIGHTS_SUFFIXES):
        raise ValidationError({"file": WRONG_WEIGHTS})
    size = getattr(upload, "size", None)
    if size is not None and size > settings.TANGO_WEIGHTS_MAX_BYTES:
        raise ValidationError({"file": f"The file is {size} bytes; the limit is {settings.TANGO_WEIGHTS_MAX_BYTES}."})
    folder = project_dir(project.pk) / "weights"
    # Spooled beside MEDIA_ROOT's other uploads, not in the project's folder: a refused file leaves no folder.
    try:
        partial, written = _spool_weights(upload)
    except OSError as exc:
        raise ValidationError({"file": storage_error_message(exc)}) from None
    try:
        if written > settings.TANGO_WEIGHTS_MAX_BYTES:
            raise ValidationError({"file": f"The file is over the {settings.TANGO_WEIGHTS_MAX_BYTES}-byte limit."})
        try:
            read_state_dict(partial)
        except ValueError as exc:
            raise ValidationError({"file": str(exc).replace(partial.name, name)}) from None
        digest = sha256_file(partial)
        final = folder / f"{digest[:16]}.pt"
        _keep(partial, final)
    finally:
        partial.unlink(missing_ok=True)
    old = project.weights_path
    project.weights_path = relative(final)
    project.weights_name, project.weights_sha256 = name, digest
    project.save(update_fields=["weights_path", "weights_name", "weights_sha256", "updated_at"])
    if old and old != project.weights_path:
        (Path(settings.MEDIA_ROOT) / old).unlink(missing_ok=True)
    return project


def _keep(partial: Path, final: Path) -> None:
    """Rename the checked file into the project's folder; a folder the server cannot write is the user's clear error,
    with no folder of ours left behind."""
    created = [p for p in (final.parent, *final.parent.parents) if not p.exists()]
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        partial.replace(final)
    except OSError as exc:
        for folder in created:  # innermost first
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise ValidationError({"file": storage_error_message(exc)}) from None


def _spool_weights(upload) -> tuple[Path, int]:
    """Write the upload to a temporary file (stopping past the limit); a failed write leaves no file."""
    with tempfile.NamedTemporaryFile(dir=upload_spool_dir(), suffix=".part", delete=False) as spool:
        written = 0
        try:
            for chunk in _chunks(upload):
                written += len(chunk)
                if written > settings.TANGO_WEIGHTS_MAX_BYTES:
                    break
                spool.write(chunk)
            spool.flush()
        except OSError:
            Path(spool.name).unlink(missing_ok=True)
            raise
    return Path(spool.name), written


def project_weights_clear(*, project: Project) -> Project:
    if project.weights_path:
        (Path(settings.MEDIA_ROOT) / project.weights_path).unlink(missing_ok=True)
    project.weights_path = project.weights_name = project.weights_sha256 = ""
    project.save(update_fields=["weights_path", "weights_name", "weights_sha256", "updated_at"])
    return project
