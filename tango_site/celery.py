import os
import signal

import billiard
from celery import Celery
from celery.signals import beat_embedded_init

from tango_common.processes import die_with_parent

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")

app = Celery("tango_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["projects.jobs"])  # the job runtime's tasks: projects.jobs.tasks


@beat_embedded_init.connect
def embedded_beat_dies_with_its_worker(**_):
    """A beat embedded in a worker (-B, as `tango serve` runs it in team mode) is a process of its own that Celery
    does not stop when the worker is killed outright: it would go on sending the reaper's ticks with no worker."""
    if billiard.current_process().name == "Beat":  # a process; with the solo pool it is a thread of the worker
        die_with_parent(signal.SIGKILL)
