"""The thread that keeps a running job's heartbeat fresh and notices cancellation between two reports."""

import threading

from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import Job


class Heartbeat(threading.Thread):
    """Marks the job alive and notices cancellation while the stage runs, even between two reports (a long
    compile reports nothing for minutes)."""

    def __init__(self, job_id: int, attempt: int, cancelled: threading.Event):
        super().__init__(name=f"job-{job_id}-heartbeat", daemon=True)
        self.job_id, self.attempt, self.cancelled = job_id, attempt, cancelled
        self.stopped = threading.Event()

    def run(self):
        try:
            while not self.stopped.wait(settings.TANGO_JOB_HEARTBEAT_SECONDS):
                self.beat()
        finally:
            connection.close()

    def beat(self) -> None:
        Job.objects.filter(pk=self.job_id, attempt=self.attempt).update(heartbeat_at=timezone.now())
        if Job.objects.filter(pk=self.job_id, cancel_requested=True).exists():
            self.cancelled.set()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)
