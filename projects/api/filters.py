"""Query filters. Ids of related rows are plain numbers: a choice filter would answer "not a valid choice" for
another team's id and "no results" for ours, telling the two apart."""

import django_filters
from django import forms

from projects.jobs.models import Job, JobStatus
from projects.jobs.registry import stage_choices
from projects.models import Dataset, Project, Task

# Database ids are signed 64-bit: a longer number can name no row, and SQLite raises OverflowError binding it.
MAX_ID = 2**63 - 1


class IdFilter(django_filters.NumberFilter):
    """A row id: a whole number in the database's range, else a 400 (not a 500 from the database driver)."""

    field_class = forms.IntegerField

    def __init__(self, *args, **kwargs):
        super().__init__(*args, min_value=0, max_value=MAX_ID, **kwargs)


class DatasetFilter(django_filters.FilterSet):
    team = IdFilter(field_name="team_id")
    task = django_filters.ChoiceFilter(choices=Task.choices)

    class Meta:
        model = Dataset
        fields = ["team", "task"]


class ProjectFilter(django_filters.FilterSet):
    team = IdFilter(field_name="team_id")
    task = django_filters.ChoiceFilter(choices=Task.choices)
    device = IdFilter(field_name="device_id")

    class Meta:
        model = Project
        fields = ["team", "task", "device"]


class JobFilter(django_filters.FilterSet):
    project = IdFilter(field_name="project_id")
    stage = django_filters.ChoiceFilter(choices=stage_choices)  # a callable: the stages registered at run time
    status = django_filters.ChoiceFilter(choices=JobStatus.choices)

    class Meta:
        model = Job
        fields = ["project", "stage", "status"]
