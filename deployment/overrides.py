"""Accepting a conversion that failed its parity check: the user decides the difference does not matter to them.

The ONNX artifact becomes "accepted (override)" with who, when, why and what was measured in its checks; the
convert job counts as succeeded from then on (its result says it was overridden), so benchmark and package can run;
the audit log records it. Only a conversion that failed parity can be accepted, by an editor of its team.
"""

from django.db import transaction
from django.utils import timezone

from projects.audit import audit_record
from projects.jobs.errors import JobNotAllowed
from projects.jobs.log import JobLog
from projects.jobs.models import Job, JobStatus
from projects.jobs.registry import stage_next
from projects.models import RunMode

from .models import Artifact


def convert_accept(*, job: Job, user, reason: str) -> Job:
    if job.stage != "convert" or job.status != JobStatus.FAILED or not (job.result or {}).get("parity_failed"):
        raise JobNotAllowed("Only a conversion that failed its parity check can be accepted.")
    reason = " ".join((reason or "").split())[:300]
    if not reason:
        raise JobNotAllowed("Say why the difference is acceptable: the reason is recorded with your name.")
    artifact = job.artifacts.filter(kind=Artifact.Kind.ONNX, status=Artifact.Status.FAILED).first()
    if artifact is None:
        raise JobNotAllowed("This conversion has no failed ONNX artifact to accept.")
    override = {"by": user.get_username(), "at": timezone.now().isoformat(), "reason": reason,
                "check": "parity", "measured": job.result.get("parity")}
    with transaction.atomic():
        if not Job.objects.filter(pk=job.pk, status=JobStatus.FAILED).update(
                status=JobStatus.SUCCEEDED, error="", result={**job.result, "override": override}):
            raise JobNotAllowed("The conversion changed meanwhile; reload the page.")
        artifact.status = Artifact.Status.ACCEPTED
        artifact.checks = {**artifact.checks, "override": override}
        artifact.save(update_fields=["status", "checks"])
        audit_record(actor=user, action="overridden", target=artifact, detail=f"parity check: {reason}")
        log = JobLog(job.pk)
        log.write(f"Accepted by {override['by']} despite the parity check: {reason}")
    log.state()
    job.refresh_from_db()
    following = stage_next(job.stage)
    if job.project.run_mode == RunMode.AUTO and following is not None:
        from projects.jobs.services import job_enqueue

        try:
            job_enqueue(project=job.project, stage_key=following.key, user=user)
        except JobNotAllowed as exc:
            log.write(f"Automatic mode could not queue {following.label}: {exc}")
    return job
