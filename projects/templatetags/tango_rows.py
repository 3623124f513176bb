"""The project list's rows: `{% load tango_rows %}`, then `{% project_row project %}` (after project_rows_annotate).

A row is a pure function of the values it shows, so each distinct row is rendered once per process and kept by
those values: the same row rendered again (every member of a team opens the same first page) costs a dictionary
lookup. Rendering 25 rows through the template engine was about a third of the list page's CPU under load
(bench/load.py). The key holds every value the row shows, so a renamed project, a new job state or a new best score
is a new key, never a stale row; with DEBUG on (templates edited while the server runs) rows are rendered each time.
"""

from functools import lru_cache

from django import template
from django.conf import settings
from django.template.loader import render_to_string

register = template.Library()

ROW_KEYS = ("pk", "name", "description", "team", "task", "device", "engine", "precision", "latest_stage",
            "latest_stage_label", "latest_status", "latest_progress", "best_score", "best_score_label")


@register.simple_tag
def project_row(project) -> str:
    values = (project.pk, project.name, project.description, str(project.team), project.get_task_display(),
              str(project.device), project.engine, project.get_precision_display(), project.latest_stage,
              project.latest_stage_label, project.latest_status, project.latest_progress, project.best_score,
              project.best_score_label)
    return _render(values) if settings.DEBUG else _render_cached(values)


def _render(values: tuple) -> str:
    return render_to_string("projects/_project_row.html", dict(zip(ROW_KEYS, values, strict=True)))


_render_cached = lru_cache(maxsize=4096)(_render)
