"""Try it: a member uploads an image, picks an artifact, and a worker answers with the model's predictions (the
top-k labels of a classifier; the boxes of a detector, drawn on the image).

The upload is checked before anything is written: its size while it streams in (ImageUploadHandler keeps it in
memory and drops it past the limit), then its type: Pillow reads it whole, trying only the image types a dataset
upload accepts (projects.datasets.images). Only then is it kept, under the project's folder, and a short Celery task
(`deployment.tasks.run_trial`, cpu queue) runs it.
"""

import io
import logging
import time
import uuid

from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone
from PIL import Image, UnidentifiedImageError

from projects.datasets.images import IMAGE_TYPE_NAMES, IMAGE_TYPES, PILLOW_FORMATS, pillow_open
from projects.jobs.storage import absolute, project_dir, relative
from projects.models import Task
from projects.uploads import UploadGuard

from .models import Artifact, Trial

logger = logging.getLogger(__name__)

MAX_IMAGE_BYTES = 10 * 1024 * 1024
MAX_PIXELS = 40_000_000  # past this Pillow's decompression-bomb guard would warn; we refuse
MAX_TOP_K = 10
TOO_BIG = f"The image is over the {MAX_IMAGE_BYTES // (1024 * 1024)} MB limit."
NOT_QUEUED = "The job queue (the broker) is unreachable, so the image could not be handed to a worker. Try again."


class ImageUploadHandler(UploadGuard):
    """Keeps an uploaded image in memory; the guard drops it once it passes MAX_IMAGE_BYTES, so a refused upload
    never touches the disk (not even Django's temporary file). The view reads why from upload_refusals."""

    def __init__(self, request=None):
        super().__init__(request, limit=MAX_IMAGE_BYTES, too_big=TOO_BIG)
        self.buffer = None

    def new_file(self, *args, **kwargs):
        super().new_file(*args, **kwargs)
        self.buffer = io.BytesIO()

    def receive_data_chunk(self, raw_data, start):
        self.buffer.write(super().receive_data_chunk(raw_data, start))
        return None

    def file_complete(self, file_size):
        from django.core.files.uploadedfile import InMemoryUploadedFile

        self.buffer.seek(0)
        return InMemoryUploadedFile(self.buffer, self.field_name, self.file_name, self.content_type, file_size,
                                    self.charset, self.content_type_extra)


def use_image_upload_handler(request) -> None:
    """Before the body is read: uploads on this request are held in memory and size-checked as they stream."""
    request.upload_handlers = [ImageUploadHandler(request)]


def triable_among(artifacts):
    """The verified artifacts among these that this server can run: models, not bundles or builds for the device
    (what Try it offers; the API's `?triable=true`)."""
    return artifacts.filter(status=Artifact.Status.VERIFIED, runs=Artifact.Runs.HERE).exclude(
        kind=Artifact.Kind.BUNDLE)


def triable_artifacts(project):
    """The project's artifacts Try it offers, newest first."""
    return (triable_among(Artifact.objects.filter(project=project)).select_related("training_run")
            .order_by("-created_at", "-id"))


def check_image(upload, *, too_big: bool = False) -> tuple[bytes, str]:
    """(bytes, suffix) of an uploaded image, or ValidationError saying what is wrong. Reads memory only."""
    if too_big:
        raise ValidationError({"image": TOO_BIG})
    if upload is None:
        raise ValidationError({"image": f"Choose an image file ({IMAGE_TYPE_NAMES})."})
    size = getattr(upload, "size", None)
    if size is not None and size > MAX_IMAGE_BYTES:
        raise ValidationError({"image": TOO_BIG})
    data = upload.read(MAX_IMAGE_BYTES + 1)
    if len(data) > MAX_IMAGE_BYTES:
        raise ValidationError({"image": TOO_BIG})
    if not data:
        raise ValidationError({"image": "The file is empty."})
    # Read as a dataset's images are: Pillow's own opener, tried with the accepted formats only.
    open_image = pillow_open()
    kind = None  # the format Pillow named, once it has opened the file
    try:
        with open_image(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
            kind = image.format
            if image.width * image.height > MAX_PIXELS:
                raise ValidationError({"image": f"The image is {image.width}x{image.height}; at most "
                                                f"{MAX_PIXELS // 1_000_000} megapixels."})
            image.verify()
        with open_image(io.BytesIO(data), formats=PILLOW_FORMATS) as image:
            image.load()  # verify() skips the pixels: a truncated file fails only here
    except ValidationError:
        raise
    except UnidentifiedImageError:
        raise ValidationError({"image": f"That is not a {IMAGE_TYPE_NAMES} image."}) from None
    except Image.DecompressionBombError:  # raised by the opener from the header, before the size check above
        raise ValidationError({"image": f"The image has more than {MAX_PIXELS // 1_000_000} megapixels."}) from None
    except Exception as exc:  # Pillow reports bad data as OSError, SyntaxError, ValueError, struct.error…
        if kind is None:  # the opener itself gave up (a header it recognised but could not parse)
            raise ValidationError({"image": f"Pillow could not open the file as a {IMAGE_TYPE_NAMES} image "
                                            f"({exc})."}) from None
        raise ValidationError({"image": f"The file is a {kind} image but Pillow cannot decode it: it is corrupt "
                                        f"or truncated ({exc})."}) from None
    return data, IMAGE_TYPES.get(kind, ".jpg")  # MPO: the phone cameras' JPEG, which the JPEG opener reads


def trial_create(*, project, artifact: Artifact, upload, user=None, top_k: int = 3, too_big: bool = False) -> Trial:
    """Check the image, keep it, and hand the trial to a worker. The caller has checked the user may edit."""
    if artifact.project_id != project.pk or not triable_artifacts(project).filter(pk=artifact.pk).exists():
        raise ValidationError({"artifact": "Pick a verified model of this project that runs on this server."})
    if not 1 <= top_k <= MAX_TOP_K:
        raise ValidationError({"top_k": f"Between 1 and {MAX_TOP_K}."})
    data, suffix = check_image(upload, too_big=too_big)
    folder = project_dir(project.pk) / "trials"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{uuid.uuid4().hex}{suffix}"
    partial = path.with_name(path.name + ".part")
    try:
        partial.write_bytes(data)
        partial.replace(path)
    except OSError as exc:
        partial.unlink(missing_ok=True)
        raise ValidationError({"image": f"The server could not store the image: {exc.strerror or exc}."}) from None
    name = (getattr(upload, "name", "") or "image").rsplit("/", 1)[-1][:200]
    with transaction.atomic():
        trial = Trial.objects.create(project=project, artifact=artifact, requested_by=user, image_path=relative(path),
                                     image_name=name, top_k=top_k)
        transaction.on_commit(lambda: _dispatch(trial.pk))
    return trial


def _dispatch(trial_id: int) -> None:
    from .tasks import run_trial

    try:
        run_trial.apply_async(args=[trial_id], queue="cpu")
    except Exception as exc:  # the broker is down: say so now rather than leave the trial queued for ever
        logger.error("could not queue trial %s: %s", trial_id, exc)
        Trial.objects.filter(pk=trial_id, status=Trial.Status.QUEUED).update(
            status=Trial.Status.FAILED, error=NOT_QUEUED, finished_at=timezone.now())


def _runner(artifact: Artifact):
    """batch -> raw outputs of the artifact on its own runtime, here (the benchmark's loader: every engine)."""
    from projects.jobs.errors import StageError

    from .optimize import loader_for

    load = loader_for(artifact, artifact.project, 1)
    if load is None:
        raise StageError(f"{artifact.get_kind_display()} ({artifact.engine} {artifact.precision}) does not run on "
                         "this server.")
    return load()


def trial_execute(trial_id: int) -> Trial:
    """What the worker runs: the image through the artifact, with the bundle's own pre- and post-processing. Runs
    once: a redelivered message finds the trial claimed and does nothing."""
    claimed = Trial.objects.filter(pk=trial_id, status=Trial.Status.QUEUED).update(status=Trial.Status.RUNNING)
    trial = Trial.objects.select_related("artifact__training_run", "project").get(pk=trial_id)
    if not claimed:
        return trial
    try:
        trial.result = _predict(trial)
        trial.status = Trial.Status.SUCCEEDED
    except Exception as exc:  # the member sees why, on the page and in the API
        logger.exception("trial %s failed", trial_id)
        trial.status, trial.error = Trial.Status.FAILED, f"{type(exc).__name__}: {exc}"[:2000]
    trial.finished_at = timezone.now()
    trial.save(update_fields=["result", "status", "error", "finished_at", "annotated_path"])
    return trial


def _predict(trial: Trial) -> dict:
    from .engine.bundle import RunnerSession

    artifact = trial.artifact
    arch = artifact.training_run.architecture
    image = absolute(trial.image_path)
    session = RunnerSession(_runner(artifact))
    started = time.perf_counter()
    if trial.project.task == Task.DETECTION:
        from .engine.detect_infer import detect, draw

        result = detect(session, [image], input_size=arch["input_size"], labels=arch["class_names"])[0]
        annotated = image.with_name(f"{image.stem}-boxes.jpg")
        draw(image, result).save(annotated, quality=90)
        trial.annotated_path = relative(annotated)
    else:
        from .engine.bundle_infer import predict

        top_k = min(trial.top_k, len(arch["class_names"]))
        result = predict(session, [image], input_size=arch["input_size"], labels=arch["class_names"], top_k=top_k)[0]
    result["image"] = trial.image_name
    result["latency_ms"] = round(1000 * (time.perf_counter() - started), 2)
    result["artifact"] = f"{artifact.get_kind_display()} ({artifact.engine} {artifact.precision})"
    return result
