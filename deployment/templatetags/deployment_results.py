"""What the deployment stages' result cards read besides the job's result: `{% load deployment_results %}`."""

from django import template

register = template.Library()


@register.filter
def stored_artifact(job_id, pk):
    """The artifact the job `job_id` stored under `pk` (a result names its files by pk), or None: where it runs is
    the stored row's `runs`, not the words the result kept. Takes the job's id, not the job: the live console
    renders the card from the job's state (a dict), the page from the Job."""
    from deployment.models import Artifact

    return Artifact.objects.filter(job_id=job_id, pk=pk).first() if job_id and pk else None
