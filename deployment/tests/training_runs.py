"""A finished training run for the deployment stages to start from: a freshly initialised densenet_tiny saved as a
training run would save it. Conversion, measurement and packaging do not care how good the weights are, only that
every runtime agrees on them."""

import torch
from django.utils import timezone

from projects.jobs.models import Job, JobStatus
from projects.jobs.storage import job_dir, relative
from training.engine.zoo import build_model
from training.models import TrainingRun

MODEL, INPUT_SIZE = "densenet_tiny", 16


def job_for(project, stage, status=JobStatus.RUNNING) -> Job:
    return Job.objects.create(project=project, stage=stage, status=status, finished_at=timezone.now())


def trained_run(project, model: str = MODEL) -> TrainingRun:
    job = job_for(project, "train", JobStatus.SUCCEEDED)
    classes = project.dataset.class_names
    weights = job_dir(job) / "best.pt"
    torch.save(build_model(model, num_classes=len(classes), input_size=INPUT_SIZE).state_dict(), weights)
    return TrainingRun.objects.create(
        job=job, project=project, model_name=model, weights_path=relative(weights), metrics={"best_top1": 0.5},
        architecture={"num_classes": len(classes), "class_names": classes, "input_size": INPUT_SIZE})
