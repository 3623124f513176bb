"""System checks of the stage registry (`manage.py check`, and every test run): a stage that requires an unknown
stage, or names a result template that does not exist, is reported at start-up rather than on a user's page."""

from django.core.checks import Error, register
from django.template import TemplateDoesNotExist
from django.template.loader import get_template

from .registry import stage_exists, stages


@register()
def check_stages(app_configs=None, **kwargs) -> list[Error]:
    errors = []
    for stage in stages():
        errors += [Error(f"Stage {stage.key!r} requires {need!r}, which no app registers.", id="projects.E001")
                   for need in stage.requires if not stage_exists(need)]
        if stage.result_template:
            try:
                get_template(stage.result_template)
            except TemplateDoesNotExist:
                errors.append(Error(f"Stage {stage.key!r}: no template {stage.result_template!r}.",
                                    id="projects.E002"))
    return errors
