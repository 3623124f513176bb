"""What the deployment stages' result cards read besides the job's result: `{% load deployment_results %}`."""

from django import template

register = template.Library()


@register.filter
def stored_artifact(job, pk):
    """The artifact `job` stored under `pk` (a result names its files by pk), or None: where it runs is the stored
    row's `runs`, not the words the result kept."""
    return job.artifacts.filter(pk=pk).first() if pk else None
