"""Convert results stored before the guard kept what was checked here of a file only the device runs: their attempts
have no `simulated` key, so the target card read an RKNN file checked in the toolkit's simulator as "not measured
here", and its summary said "runs on device; its accuracy is checked there.". The simulator's figures were kept all
along in the artifact's conversion record (`load_check`): they are copied onto the attempt, and the summary is
written again as the guard writes it now. Every other attempt gets `simulated: None`, as the guard stores it."""

from django.db import migrations


def with_simulated(guard: dict, load_check: dict) -> dict | None:
    """The stored guard outcome with `simulated` on every attempt (None where nothing needs it); None when it has
    it already."""
    from deployment.engine.guard import SIMULATED, on_device_check

    attempts = (guard or {}).get("attempts") or []
    if not attempts or all("simulated" in attempt for attempt in attempts):
        return None
    attempts = [{"simulated": None, **attempt} for attempt in attempts]
    last = attempts[-1]
    if guard.get("passed") and last.get("metrics") is None and not last.get("error"):  # a file only the device runs
        if "where" in (load_check or {}):
            last["simulated"] = {k: load_check[k] for k in SIMULATED if k in load_check}
        guard = {**guard, "summary": f"{guard['engine']} {guard['asked']}: {on_device_check(last['simulated'])}"}
    return {**guard, "attempts": attempts}


def add_simulated(apps, schema_editor):
    Artifact = apps.get_model("deployment", "Artifact")
    Job = apps.get_model("projects", "Job")
    for artifact in Artifact.objects.filter(checks__has_key="guard").iterator():
        load_check = (artifact.checks.get("conversion") or {}).get("load_check") or {}
        guard = with_simulated(artifact.checks["guard"], load_check)
        if guard is None:
            continue
        artifact.checks = {**artifact.checks, "guard": guard}
        artifact.save(update_fields=["checks"])
        job = Job.objects.get(pk=artifact.job_id)
        target = (job.result or {}).get("target") or {}
        if target.get("artifact") == artifact.pk and target.get("guard"):
            job.result = {**job.result, "target": {**target, "guard": with_simulated(target["guard"], load_check)
                                                   or target["guard"]}}
            job.save(update_fields=["result"])


class Migration(migrations.Migration):
    dependencies = [
        ("deployment", "0006_artifact_runs"),
        ("projects", "0008_bf16_precision"),
    ]

    operations = [migrations.RunPython(add_simulated, migrations.RunPython.noop)]
