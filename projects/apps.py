from django.apps import AppConfig


class ProjectsConfig(AppConfig):
    name = "projects"
    verbose_name = "Projects"

    def ready(self):
        from . import commands
        from .jobs import checks  # noqa: F401  (registers the stage registry's system checks)
        from .models import Task

        commands.demo_register(Task.CLASSIFICATION, "projects.demo.demo_project_create")
