"""A trained tiny detector ready for the converters: its ONNX export, the validation split the guard judges it on
and a calibration set from the training split. Shared by the converter tests of every engine, and, as a project's
finished training run, by the stage tests that start after training."""

import shutil
from pathlib import Path

from deployment.engine.converters.base import Source, calibration_set
from deployment.engine.detect_onnx import _export_copy, export_detector_onnx, load_detector
from deployment.engine.guard import Validation
from training.tests.detection_support import INPUT_SIZE, trained_detector


def detector_for_conversion(tmp_path_factory):
    """(source, validation, calibration) for the session's trained detector."""
    shared = trained_detector(tmp_path_factory.getbasetemp())
    data = Path(shared["data_dir"])
    model = _export_copy(load_detector(Path(shared["result"]["weights_path"])))
    onnx_path = export_detector_onnx(model, input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("det") / "m.onnx")
    source = Source(onnx_path=onnx_path, task="detection", input_size=INPUT_SIZE, torch_model=model)
    validation = Validation(task="detection", input_size=INPUT_SIZE, num_classes=len(model.names), samples=[
        (p, data / "labels" / "val" / f"{p.stem}.txt") for p in sorted((data / "images" / "val").glob("*.jpg"))])
    calibration = calibration_set(sorted((data / "images" / "train").glob("*.jpg")), split="train", task="detection",
                                  input_size=INPUT_SIZE)
    return source, validation, calibration


def detection_project_trained(team, base: Path, **fields):
    """A detection project on the session's tiny dataset whose train stage has finished with the session's trained
    detector (training.tests.detection_support, trained once per session): the convert, benchmark and package stages
    start from it as they would after a real train stage. `fields`: the project's (device, engine, precision…)."""
    from django.conf import settings
    from django.utils import timezone

    from projects.jobs.models import Job, JobStatus
    from projects.jobs.storage import job_dir, relative
    from projects.models import Dataset
    from projects.tests import factories
    from tango_common.hashing import sha256_file
    from training.models import TrainingRun

    shared = trained_detector(base)
    result = shared["result"]
    folder = f"datasets/test/detection-{team.pk}"
    shutil.copytree(shared["data_dir"], Path(settings.MEDIA_ROOT) / folder, dirs_exist_ok=True)
    images = sum(1 for _ in (Path(shared["data_dir"]) / "images").glob("*/*.jpg"))
    dataset = Dataset.objects.create(team=team, name="cats", task="detection", path=folder, class_names=["cat"],
                                     num_images=images, sha256="3" * 64)
    project = factories.project(team, name="cats", task="detection", dataset=dataset, input_size=INPUT_SIZE,
                                options={"model": "yolo11n"}, **fields)
    job = Job.objects.create(project=project, stage="train", status=JobStatus.SUCCEEDED, finished_at=timezone.now())
    weights = job_dir(job) / "best.pt"
    shutil.copyfile(result["weights_path"], weights)
    TrainingRun.objects.create(
        job=job, project=project, model_name="yolo11n", weights_path=relative(weights),
        weights_sha256=sha256_file(weights), history=result["history"],
        metrics={"final": result["final"], "map50": result["final"]["map50"],
                 "map50_95": result["final"]["map50_95"]},
        architecture={"task": "detection", "num_classes": 1, "class_names": ["cat"], "input_size": INPUT_SIZE,
                      "params": result["params"], "gflops": result["gflops"]})
    return project
