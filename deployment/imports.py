"""Bring your own model: an ONNX or TorchScript file a team trained elsewhere becomes the project's model, and the
same convert → benchmark → package stages take it from there.

The import stands in for training: it is recorded as a succeeded `train` job (its log says it was imported, not
trained here) with a TrainingRun whose architecture says `imported`, so every stage after it finds the model where
it looks for a trained one. The file is checked before it is kept (deployment.engine.model_import): a refused file
leaves nothing behind.
"""

import shutil
import tempfile
from pathlib import Path

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import transaction
from django.utils import timezone

from projects.audit import audit_record
from projects.jobs.errors import JobNotAllowed
from projects.jobs.log import JobLog
from projects.jobs.models import ACTIVE_STATUSES, Job, JobStatus
from projects.jobs.storage import absolute, job_dir, relative
from projects.services import storage_error_message, upload_spool_dir
from projects.uploads import guard_uploads
from tango_common.hashing import sha256_file
from tango_common.images import IMAGENET_MEAN, IMAGENET_STD
from training.models import TrainingRun

from .engine.converters.base import IMPORTED_REFERENCE, TRAINED_REFERENCE

FORMATS = {".onnx": "onnx", ".ts": "torchscript", ".pt": "torchscript"}
WRONG_FORMAT = "Upload an ONNX model (.onnx) or a TorchScript model (.ts or .pt saved with torch.jit.save)."
VALIDATION_IMAGES = 200  # of the validation split, scored at import (a few seconds for a ResNet-18 at 224 px)
CHANCE_LEVEL = 0.01  # "at chance": a score that guessing reaches at least this often (one-sided binomial tail)…
# …and that a clearly useful model reaches less often than CHANCE_LEVEL (the lower tail). Clearly useful: right on
# half of the images guessing gets wrong (top-1 chance + (1 - chance) / 2: 75% of 2 classes, 55% of 10).
USEFUL_SHARE = 0.5
MIN_INPUT, MAX_INPUT = 8, 1280
DETECTION_MEAN, DETECTION_STD = (0.0, 0.0, 0.0), (1.0, 1.0, 1.0)


def default_preprocessing(task: str) -> tuple[tuple, tuple]:
    return (DETECTION_MEAN, DETECTION_STD) if task == "detection" else (IMAGENET_MEAN, IMAGENET_STD)


def is_imported(run: TrainingRun) -> bool:
    """The one test of "brought by the team, not trained here" every stage reads."""
    return bool((run.architecture or {}).get("imported"))


def reference_name(run: TrainingRun) -> str:
    """What the run's converted forms are held to, in the words the log, the guard, the page and the bundle's smoke
    test all use: "the imported model" (its own ONNX form) or "the PyTorch model"."""
    return IMPORTED_REFERENCE if is_imported(run) else TRAINED_REFERENCE


def baseline_label(run: TrainingRun) -> str:
    """What the live Table 2's baseline row runs, in the table's words. A model trained here is timed as PyTorch
    eager; an imported one has no PyTorch weights (optimize.torch_module runs its ONNX form in ONNX Runtime), and its
    row said "PyTorch eager" all the same."""
    if not is_imported(run):
        return "PyTorch eager"
    if run.architecture["imported"] == "onnx":
        return "Imported ONNX model (ONNX Runtime)"
    return "Imported TorchScript model, as ONNX (ONNX Runtime)"


def imported_onnx(run: TrainingRun) -> Path:
    """The imported model as the pipeline's ONNX (normalisation folded in, input "images")."""
    return absolute(run.architecture["onnx_path"])


def _triple(values, name: str) -> tuple[float, float, float]:
    try:
        numbers = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        numbers = ()
    if len(numbers) != 3:
        raise ValidationError({name: "Three numbers, one per channel (R, G, B)."})
    return numbers


def guard_model_upload(request) -> None:
    """Before the body is read: a file that is not named as a model, or is over the limit, is refused as it streams
    in, before Django keeps a byte of it (projects.uploads); model_import reads why from the request."""
    limit = settings.TANGO_WEIGHTS_MAX_BYTES
    guard_uploads(request, suffixes=tuple(FORMATS), wrong_name=WRONG_FORMAT, limit=limit,
                  too_big=f"The file is over the {limit}-byte limit.")


def model_import(*, project, upload, labels=None, input_size: int | None = None, mean=None, std=None,
                 user=None) -> TrainingRun:
    """Check the uploaded model and make it the project's model. Raises ValidationError (what is wrong with the
    file or the settings) or JobNotAllowed (a stage is running)."""
    from .engine import model_import as core

    task = project.task
    name = Path(getattr(upload, "name", "") or "").name
    fmt = FORMATS.get(Path(name).suffix.lower())
    if fmt is None:
        raise ValidationError({"file": WRONG_FORMAT})
    limit = settings.TANGO_WEIGHTS_MAX_BYTES
    size = getattr(upload, "size", None)
    if size is not None and size > limit:
        raise ValidationError({"file": f"The file is {size} bytes; the limit is {limit}."})
    class_names = list(project.dataset.class_names)
    # one a line, as the page's box takes them, whether sent as one field or several (multipart lists repeat a key)
    labels = [line.strip() for label in labels or () for line in str(label).splitlines() if line.strip()] or class_names
    if labels != class_names:
        raise ValidationError({"labels": "The labels must be the project dataset's classes, in the model's output "
                                         f"order: {', '.join(class_names)}. Relabel the dataset or the model."})
    input_size = int(input_size or project.input_size)
    if not MIN_INPUT <= input_size <= MAX_INPUT:
        raise ValidationError({"input_size": f"Between {MIN_INPUT} and {MAX_INPUT} pixels."})
    default_mean, default_std = default_preprocessing(task)
    mean = _triple(mean if mean is not None else default_mean, "mean")
    std = _triple(std if std is not None else default_std, "std")
    if min(std) <= 0:
        raise ValidationError({"std": "Standard deviations must be above 0."})
    if Job.objects.filter(project=project, status__in=ACTIVE_STATUSES).exists():
        raise JobNotAllowed("A stage of this project is queued or running; import the model when it is done.")

    work = Path(tempfile.mkdtemp(dir=upload_spool_dir(), prefix="import-"))
    try:
        source = work / f"upload{Path(name).suffix.lower()}"
        try:
            written = _spool(upload, source, limit)
        except OSError as exc:
            raise ValidationError({"file": storage_error_message(exc)}) from None
        if written > limit:
            raise ValidationError({"file": f"The file is over the {limit}-byte limit."})
        onnx_path = work / "model.onnx"
        samples, split = _validation_samples(project)
        try:  # in a child process with bounded memory and time: the file is somebody else's program
            checks = core.checked_in_child(source, onnx_path, fmt=fmt, task=task, input_size=input_size,
                                           num_classes=len(labels), mean=mean, std=std, validation=samples,
                                           split=split)
        except core.ImportRefused as exc:
            raise ValidationError({"file": str(exc)}) from None
        if warning := chance_warning(checks.get("validation"), labels=labels, mean=mean, std=std,
                                     input_size=input_size):
            checks["accuracy_warning"] = warning  # kept with the import: the page and the API say it until replaced
        with transaction.atomic():
            now = timezone.now()
            job = Job.objects.create(project=project, stage="train", status=JobStatus.SUCCEEDED, requested_by=user,
                                     started_at=now, finished_at=now, progress=100,
                                     result={"imported": fmt, "model": name, "checks": checks})
            folder = job_dir(job)
            kept_source = folder / f"imported{source.suffix}"
            shutil.move(str(source), kept_source)
            kept_onnx = folder / "model.onnx"
            shutil.move(str(onnx_path), kept_onnx)
            run = TrainingRun.objects.create(
                job=job, project=project, model_name=f"imported {name}"[:60], dataset_sha256="",
                weights_path=relative(kept_source), weights_sha256=sha256_file(kept_source),
                architecture={"imported": fmt, "num_classes": len(labels), "class_names": labels,
                              "input_size": input_size, "mean": list(mean), "std": list(std),
                              "onnx_path": relative(kept_onnx), "source_name": name, "checks": checks},
                metrics={})
            audit_record(actor=user, action="started", target=job, detail=f"imported model {name}")
            if project.input_size != input_size:  # the project's model is now this one: its size is the project's
                project.input_size = input_size
                project.save(update_fields=["input_size"])
        log = JobLog(job.pk)
        log.write(f"Imported {name} ({fmt}) instead of training: {checks.get('input', '')} -> "
                  f"{checks.get('output', '')}, {len(labels)} labels, {input_size} px.")
        log.write(f"Its normalisation (mean {', '.join(f'{v:g}' for v in mean)}; std "
                  f"{', '.join(f'{v:g}' for v in std)}) is folded into the ONNX model the next stages use. "
                  f"It ran once on this server, {checks['sandbox']}; its memory and time capped.")
        if scores := checks.get("validation"):
            log.write(f"On the {scores['split']} split: {_scored(scores)}.")
        if warning := checks.get("accuracy_warning"):
            # "too_few" says nothing is shown to be wrong: a note, not a warning
            log.write(f"{'Note' if warning.get('verdict') == 'too_few' else 'Warning'}: {warning['message']}")
        return run
    finally:
        shutil.rmtree(work, ignore_errors=True)


def _validation_samples(project) -> tuple[list[tuple[str, int]], str]:
    """The classification images an import is scored on: the validation split, or the training one where the
    dataset has none (the split's name says which). None for detection, whose score is its convert stage's."""
    if project.task != "classification":
        return [], ""
    from .optimize import _classification_samples

    samples = _classification_samples(project.dataset, "val")
    split = "validation"
    if not samples:
        samples, split = _classification_samples(project.dataset, "train"), "training"
    # spread over the classes (the list is grouped by class) when the split holds more than are scored
    step = max(1, len(samples) // VALIDATION_IMAGES)
    return [(str(path), label) for path, label in samples[::step][:VALIDATION_IMAGES]], split


def _scored(scores: dict) -> str:
    return (f"top-1 {scores['top1']:g}% on {scores['n_images']} images, where guessing among "
            f"{scores['num_classes']} classes scores {scores['chance']:g}%")


def _chance_tail(correct: int, n: int, p: float) -> float:
    """P(at least `correct` of `n` right) when every answer is right with probability p."""
    from math import comb

    return sum(comb(n, k) * p ** k * (1 - p) ** (n - k) for k in range(correct, n + 1))


def _useful_top1(k: int) -> float:
    return 1 / k + USEFUL_SHARE * (1 - 1 / k)


def chance_warning(scores: dict | None, *, labels: list[str], mean, std, input_size: int) -> dict | None:
    """What to tell the user when an imported classifier's score on the project's own images does not beat
    guessing: what was measured, the chance level, and the verdict with the likely causes. None when it is clearly
    better than chance (or was not scored). It never refuses the model: the user may know better (a dataset whose
    images differ from the model's on purpose), and convert → benchmark still measure it.

    The rule: "at_chance" only when the evidence says so, on both sides: guessing reaches the score at least
    CHANCE_LEVEL (1%) of the time, and a clearly useful model (USEFUL_SHARE) scores this low less often than that.
    Where a useful model could have scored this low too, the images were too few to tell a broken model from a
    middling one (2 of 6 right among 10 classes): "too_few", which says so instead of calling the model broken."""
    if not scores or not scores.get("n_images"):
        return None
    n, k = scores["n_images"], scores["num_classes"]
    confusion = scores["confusion"]
    correct = sum(confusion[i][i] for i in range(k))
    if _chance_tail(correct, n, 1 / k) < CHANCE_LEVEL:
        return None
    useful = _useful_top1(k)
    # P(at most `correct` right) for the useful model: 1 - P(at least correct + 1)
    at_chance = 1 - _chance_tail(correct + 1, n, useful) < CHANCE_LEVEL
    measured = {"measured": _scored(scores), "top1": scores["top1"], "chance": scores["chance"], "n_images": n,
                "split": scores["split"]}
    useful_words = f"a clearly useful model ({100 * useful:.4g}%: right on half of what guessing gets wrong)"
    if not at_chance:
        # No causes and no label order: nothing is shown to be wrong, and an order fitted to a handful of answers
        # fits almost any answers (2 right of 6 among 10 classes "fit" an order that scores all 6).
        message = (f"{n} {scores['split']} images are too few to tell whether the imported model is better than "
                   f"chance: {_scored(scores)}. On so few images guessing could score that, and so could "
                   f"{useful_words}. It was kept; add images to the dataset's {scores['split']} split to judge it "
                   "here, or go on: the next stages measure it as it is.")
        return {"verdict": "too_few", "message": message, **measured, "causes": [], "suggested_order": None}
    order = _label_order(confusion, labels)
    label_cause = (f"Label order: the model's outputs must be the dataset's classes in this order: "
                   f"{', '.join(labels)}.")
    if order:
        label_cause += (f" Its answers fit the order {', '.join(order['labels'])} (top-1 {order['top1']:g}% read "
                        "that way): reorder the model's outputs, or the dataset's classes, to match.")
    causes = [label_cause,
              f"Normalisation: mean {', '.join(f'{v:g}' for v in mean)} and std {', '.join(f'{v:g}' for v in std)} "
              "must be the ones the model was trained with (ImageNet's are the default; a model fed pixels in [0, 1] "
              "needs mean 0, 0, 0 and std 1, 1, 1).",
              f"Input size: {input_size} px must be the size the model was trained at.",
              "Or the model was trained on other classes or images than this dataset's."]
    message = (f"The imported model is no better than chance on this project's {scores['split']} images: "
               f"{_scored(scores)}, and {useful_words} would score this low less than 1% of the time. It was kept; "
               "check the likely causes below and import it again with the right settings.")
    return {"verdict": "at_chance", "message": message, **measured, "causes": causes,
            "suggested_order": order["labels"] if order else None}


def _label_order(confusion: list[list[int]], labels: list[str]) -> dict | None:
    """The order of classes the model's outputs fit best (each output read as the class it most often answers
    for, one class per output), where that order is another one and scores clearly above chance."""
    k = len(labels)
    # Greedy, the largest count first: a model whose labels were shuffled has one strong cell per row and column.
    cells = sorted(((confusion[c][o], c, o) for c in range(k) for o in range(k)), reverse=True)
    order: list[str | None] = [None] * k  # output -> class
    taken, correct = set(), 0
    for count, cls, out in cells:
        if order[out] is None and cls not in taken:
            order[out], correct = labels[cls], correct + count
            taken.add(cls)
    n = sum(map(sum, confusion))
    if order == labels or _chance_tail(correct, n, 1 / k) >= CHANCE_LEVEL:
        return None
    return {"labels": order, "top1": round(100 * correct / n, 2)}


def _spool(upload, path: Path, limit: int) -> int:
    written = 0
    with open(path, "wb") as out:
        chunks = upload.chunks() if hasattr(upload, "chunks") else iter(lambda: upload.read(1 << 20), b"")
        for chunk in chunks:
            written += len(chunk)
            if written > limit:
                break
            out.write(chunk)
    return written


def imported_convert_stage(job, run: TrainingRun, report) -> dict:
    """Convert for an imported model: its ONNX (normalisation folded in) is the fp32 artifact, run on the
    validation split before it is reported; a TorchScript import is compared with its ONNX export, as a trained
    model is with its own."""
    import numpy as np

    from projects.jobs.errors import StageError

    from .engine.model_import import torchscript_reference
    from .engine.onnx_export import check_parity, parity_ok
    from .models import Artifact
    from .services import _artifact, _val_images, _verified_if

    project = job.project
    arch = run.architecture
    onnx_path = job_dir(job) / "model.onnx"
    shutil.copyfile(imported_onnx(run), onnx_path)
    report(f"Imported model {arch['source_name']} ({arch['imported']}): its ONNX form is the fp32 artifact.",
           progress=20)
    if project.task == "detection":
        from .detection import detection_samples

        images = [image for image, _ in detection_samples(project.dataset, 64)]
    else:
        images = _val_images(project.dataset, 512)
    checks = {"imported": arch["checks"], "runtime": "onnxruntime CPUExecutionProvider"}
    if arch["imported"] == "torchscript" and project.task != "detection":
        reference = torchscript_reference(absolute(run.weights_path), task=project.task, mean=arch["mean"],
                                          std=arch["std"])
        checks["parity"] = check_parity(reference, onnx_path, images, input_size=arch["input_size"], report=report)
        ok = parity_ok(checks["parity"])
    else:
        from .engine.measure import onnx_runner

        run_onnx = onnx_runner(onnx_path)
        if project.task == "detection":
            from .engine.detect_infer import letterbox

            batch = np.stack([letterbox(p, arch["input_size"])[0] for p in images[:16]])
        else:
            from tango_common.images import preprocess_image

            batch = np.stack([preprocess_image(p, arch["input_size"]) for p in images[:16]])
        outputs = run_onnx(batch)
        ok = bool(np.isfinite(outputs).all())
        checks["run_on_validation"] = {"n_images": len(batch), "finite": ok}
    artifact = _artifact(job, run, kind=Artifact.Kind.ONNX, path=onnx_path, status=_verified_if(ok), checks=checks)
    if not ok:
        raise StageError("The imported model's ONNX form does not run cleanly on the validation images; the artifact "
                         "is marked failed.")
    report("Imported model verified on the validation images.", progress=50)
    result = {"task": project.task, "imported": arch["imported"], "artifacts": [artifact.pk],
              "onnx_mb": round(artifact.size_bytes / 1e6, 2), "parity": checks.get("parity")}
    if project.engine == "pytorch":
        report("The PyTorch engine needs the model's own code; an imported model is packaged from its ONNX form.")
        return result
    from .optimize import convert_target

    target = convert_target(job, run, onnx_artifact=artifact, report=report)  # the same guard as a trained model
    report(None, progress=100)
    if target["target"].get("artifact") not in (None, artifact.pk):
        result["artifacts"].append(target["target"]["artifact"])
    return {**result, **target}
