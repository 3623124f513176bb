"""Which workers are alive, per queue.

Each Celery worker's main process keeps a WorkerHeartbeat row per queue it consumes fresh (a thread started when
the worker is ready, stopped — rows deleted — on a clean shutdown). A worker killed outright stops beating; its rows
go stale after TANGO_JOB_STALE_SECONDS. The reaper uses this to tell a queued job that waits its turn from one no
worker will take, and the project page to say that the worker is not running.
"""

import logging
import os
import threading
from datetime import datetime, timedelta

from celery import signals
from django.conf import settings
from django.db import connection
from django.utils import timezone

from .models import WorkerHeartbeat

logger = logging.getLogger(__name__)

FORGET_AFTER = timedelta(days=1)  # rows of workers gone this long are deleted by the reaper


def worker_beat(*, worker: str, queues: list[str], pid: int, started_at: datetime) -> None:
    """One UPDATE while the rows are there (every beat but the first); the rows (re)made when some are missing."""
    now = timezone.now()
    mine = WorkerHeartbeat.objects.filter(worker=worker, queue__in=queues, pid=pid, started_at=started_at)
    if mine.update(beat_at=now) == len(queues):
        return
    for queue in queues:
        WorkerHeartbeat.objects.update_or_create(
            worker=worker, queue=queue, defaults={"pid": pid, "started_at": started_at, "beat_at": now})


def worker_gone(*, worker: str) -> None:
    WorkerHeartbeat.objects.filter(worker=worker).delete()


def worker_rows_forget() -> int:
    return WorkerHeartbeat.objects.filter(beat_at__lt=timezone.now() - FORGET_AFTER).delete()[0]


class WorkerHeartbeatThread(threading.Thread):
    def __init__(self, worker: str, queues: list[str]):
        super().__init__(name="worker-heartbeat", daemon=True)
        self.worker, self.queues, self.pid = worker, queues, os.getpid()
        self.started_at = timezone.now()
        self.stopped = threading.Event()

    def run(self):
        try:
            while True:
                try:
                    worker_beat(worker=self.worker, queues=self.queues, pid=self.pid, started_at=self.started_at)
                except Exception as exc:  # a locked or restarting database: the next beat tries again
                    logger.warning("worker heartbeat failed: %s", exc)
                    connection.close()
                if self.stopped.wait(settings.TANGO_JOB_HEARTBEAT_SECONDS):
                    break
            worker_gone(worker=self.worker)
        except Exception as exc:
            logger.warning("could not clear the worker heartbeat: %s", exc)
        finally:
            connection.close()

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=10)


_thread: WorkerHeartbeatThread | None = None


@signals.worker_ready.connect
def _worker_ready(sender, **_):
    global _thread
    if _thread is not None and _thread.is_alive():
        return  # the consumer restarted (a broker reconnect): the worker is the same
    queues = sorted(sender.app.amqp.queues.consume_from or sender.app.amqp.queues)
    _thread = WorkerHeartbeatThread(sender.hostname, queues)
    _thread.start()


@signals.worker_shutdown.connect
def _worker_shutdown(**_):
    if _thread is not None:
        _thread.stop()
