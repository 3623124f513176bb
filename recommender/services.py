"""Recommender services: the recommend stage."""

from .rules import recommend


def recommend_stage(job, report) -> dict:
    """Pick the model for the project's device and task, explain why, and size it at the project's input."""
    project = job.project
    device = project.device
    report(f"Task: {project.get_task_display()}; dataset {project.dataset.name} "
           f"({project.dataset.num_images} images, {len(project.dataset.class_names)} classes).", progress=5)
    report(f"Target: {device.name} ({device.get_tier_display()} tier), {device.accelerator_name or 'CPU only'}, "
           f"engine {project.engine}, {project.precision}, input {project.input_size} px, "
           f"latency budget {project.latency_budget_ms:g} ms.", progress=15)
    choice = recommend(device_name=device.name, tier=device.tier, task=project.task)
    report(f"Rule: {choice.reason}", progress=40)
    result = {**choice.as_dict(), "device": device.name, "input_size": project.input_size,
              "latency_budget_ms": project.latency_budget_ms}
    report(f"Recommended: {choice.model_label}.", progress=100)
    return result
