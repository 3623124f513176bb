"""Query filters. Ids of related rows are plain numbers: a choice filter would answer "not a valid choice" for
another team's id and "no results" for ours, telling the two apart."""

import django_filters

from projects.jobs.models import Job, JobStatus
from projects.jobs.registry import stage_choices
from projects.models import Dataset, Project, Task


class DatasetFilter(django_filters.FilterSet):
    team = django_filters.NumberFilter(field_name="team_id")
    task = django_filters.ChoiceFilter(choices=Task.choices)

    class Meta:
        model = Dataset
        fields = ["team", "task"]


class ProjectFilter(django_filters.FilterSet):
    team = django_filters.NumberFilter(field_name="team_id")
    task = django_filters.ChoiceFilter(choices=Task.choices)
    device = django_filters.NumberFilter(field_name="device_id")

    class Meta:
        model = Project
        fields = ["team", "task", "device"]


class JobFilter(django_filters.FilterSet):
    project = django_filters.NumberFilter(field_name="project_id")
    stage = django_filters.ChoiceFilter(choices=stage_choices)  # a callable: the stages registered at run time
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)

    class Meta:
        model = Job
        fields = ["project", "stage", "status"]
