"""Where a project's files live: MEDIA_ROOT/projects/<project>/jobs/<job>/. One place for the layout."""

from pathlib import Path

from django.conf import settings


def job_dir(job) -> Path:
    path = Path(settings.MEDIA_ROOT) / "projects" / str(job.project_id) / "jobs" / str(job.pk)
    path.mkdir(parents=True, exist_ok=True)
    return path


def relative(path: Path) -> str:
    return str(Path(path).resolve().relative_to(Path(settings.MEDIA_ROOT).resolve()))


def absolute(relative_path: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative_path


class StageError(Exception):
    """A stage cannot do its work; the message tells the user why and what to do."""
