import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")

app = Celery("tango_site")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()
app.autodiscover_tasks(["projects.jobs"])  # the job runtime's tasks: projects.jobs.tasks
