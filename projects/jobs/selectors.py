"""Reads of the job runtime that the pages, the API and the websocket consumer share.

Every reader of a log goes through log_lines: the job page, the API's pages and download, the consumer's replay
and catch-up. It is a lazy queryset, so a download streams from the database in chunks and never holds the log.
"""

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db.models import QuerySet
from django.utils import timezone

from .errors import StageError
from .models import ACTIVE_STATUSES, Job, JobLogLine, JobStatus, WorkerHeartbeat
from .registry import Stage, stage_get, stages

DOWNLOAD_CHUNK_LINES = 2000


def latest_jobs(project) -> dict[str, Job]:
    """The newest job of each stage."""
    latest: dict[str, Job] = {}
    for job in project.jobs.order_by("-created_at", "-id"):
        latest.setdefault(job.stage, job)
    return latest


def latest_succeeded(project, stage: str) -> Job:
    """The newest successful job of a stage: what a later stage builds on."""
    job = project.jobs.filter(stage=stage, status=JobStatus.SUCCEEDED).order_by("-finished_at", "-id").first()
    if job is None:
        raise StageError(f"No successful {stage} job: run that stage first.")
    return job


def active_job_exists(project) -> bool:
    return project.jobs.filter(status__in=ACTIVE_STATUSES).exists()


def pipeline_busy(latest: dict[str, Job]) -> str:
    """Why the pipeline cannot be started now ("" when it can): a job of the project is queued or running."""
    active = [job for job in latest.values() if job.is_active]
    if not active:
        return ""
    job = min(active, key=lambda j: (j.created_at, j.pk))
    return (f"A run is in progress: {stage_get(job.stage).label} is {job.status}. Wait for it to finish, or "
            f"cancel it.")


def stage_blockers(project, stage_key: str, latest: dict[str, Job] | None = None) -> list[str]:
    """Why the stage cannot be started now (empty when it can)."""
    latest = latest_jobs(project) if latest is None else latest
    stage = stage_get(stage_key)
    reasons = []
    current = latest.get(stage_key)
    if current and current.is_active:
        reasons.append(f"{stage.label} is already {current.status}.")
    for need in stage.requires:
        job = latest.get(need)
        if job is None or job.status != JobStatus.SUCCEEDED:
            reasons.append(f"Run {stage_get(need).label} first.")
    return reasons


@dataclass(frozen=True)
class StageRow:
    """One stage of a project as the page's card and the API's `stages` show it."""

    stage: Stage
    job: Job | None
    blockers: list[str]
    can_cancel: bool
    can_retry: bool
    worker_running: bool = True  # a live worker consumes the stage's queue


def stage_rows(project, *, editable: bool) -> list[StageRow]:
    """Every registered stage with its newest job and what blocks it; the actions only for an editor."""
    latest = latest_jobs(project)
    served = served_queues()
    rows = []
    for stage in stages():
        job = latest.get(stage.key)
        rows.append(StageRow(
            stage=stage, job=job, blockers=stage_blockers(project, stage.key, latest),
            can_cancel=editable and job is not None and job.is_active,
            can_retry=editable and job is not None and job.status in (JobStatus.FAILED, JobStatus.CANCELLED),
            worker_running=stage.queue in served,
        ))
    return rows


# --- workers ---------------------------------------------------------------------------------------------------


def served_queues() -> dict[str, datetime]:
    """{queue: when its longest-running live worker started} for every queue some live worker consumes (a worker is
    live while its heartbeat is younger than TANGO_JOB_STALE_SECONDS; see projects.jobs.workers)."""
    cutoff = timezone.now() - timedelta(seconds=settings.TANGO_JOB_STALE_SECONDS)
    served: dict[str, datetime] = {}
    for queue, started_at in WorkerHeartbeat.objects.filter(beat_at__gte=cutoff).values_list("queue", "started_at"):
        served[queue] = min(started_at, served.get(queue, started_at))
    return served


def worker_warning(rows: list[StageRow]) -> str:
    """What the pipeline panel says when no worker consumes some stage's queue ("" when every queue is served)."""
    unserved: dict[str, list[str]] = {}
    for row in rows:
        if not row.worker_running:
            unserved.setdefault(row.stage.queue, []).append(row.stage.label)
    if not unserved:
        return ""
    if len(unserved) == len({row.stage.queue for row in rows}):
        return "The worker is not running; jobs will start when it is back."
    return " ".join(f"No worker is running for the '{queue}' queue ({', '.join(labels)}); its jobs will start "
                    "when one is back." for queue, labels in unserved.items())


# --- logs ------------------------------------------------------------------------------------------------------


def log_lines(job_id: int, *, after: int = 0, limit: int | None = None) -> QuerySet[JobLogLine]:
    """Lines with seq greater than `after`, oldest first, at most `limit` of them."""
    rows = JobLogLine.objects.filter(job_id=job_id, seq__gt=after).order_by("seq")
    return rows if limit is None else rows[:limit]


@dataclass(frozen=True)
class LogPage:
    lines: list[JobLogLine]
    next_after: int  # pass as `after` to get the following lines
    has_more: bool  # more lines exist beyond this page already


def log_page(job_id: int, *, after: int, limit: int) -> LogPage:
    rows = list(log_lines(job_id, after=after, limit=limit + 1))  # one more tells whether a next page exists
    page = rows[:limit]
    return LogPage(lines=page, next_after=page[-1].seq if page else after, has_more=len(rows) > limit)


def log_last_seq(job_id: int) -> int:
    return JobLogLine.objects.filter(job_id=job_id).order_by("-seq").values_list("seq", flat=True).first() or 0


def log_download(job: Job) -> tuple[str, Iterator[str]]:
    """The file name and the text of the whole log, produced chunk by chunk as it is sent."""
    texts = log_lines(job.pk).values_list("text", flat=True).iterator(chunk_size=DOWNLOAD_CHUNK_LINES)
    return f"job-{job.pk}-{job.stage}.log", (text + "\n" for text in texts)
