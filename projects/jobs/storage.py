"""Where a project's files live: MEDIA_ROOT/projects/<project>/ (jobs/<job>/, weights/); a catalog job's (no
project) under MEDIA_ROOT/catalog/jobs/<job>/. One place for the layout."""

import errno
import shutil
from pathlib import Path

from django.conf import settings


def project_dir(project_id: int) -> Path:
    """Everything a project owns on disk is under here, so deleting the project removes this one folder."""
    return Path(settings.MEDIA_ROOT) / "projects" / str(project_id)


def catalog_dir() -> Path:
    """What jobs of no project write (this server measuring itself): shared, staff's."""
    return Path(settings.MEDIA_ROOT) / "catalog"


def job_dir(job, *, keep: bool = False) -> Path:
    """The job's working folder, emptied first unless keep (a retried training run resumes from its files).

    Emptying matters: a database restored or reset behind the files would otherwise hand a new job an old
    job's checkpoints."""
    owner = catalog_dir() if job.project_id is None else project_dir(job.project_id)
    path = owner / "jobs" / str(job.pk)
    if not keep and path.exists():
        shutil.rmtree(path)
    path.mkdir(parents=True, exist_ok=True)
    return path


def relative(path: Path) -> str:
    return str(Path(path).resolve().relative_to(Path(settings.MEDIA_ROOT).resolve()))


def absolute(relative_path: str) -> Path:
    return Path(settings.MEDIA_ROOT) / relative_path


FULL_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
UNWRITABLE_ERRNOS = (errno.EACCES, errno.EPERM, errno.EROFS)


def storage_problem(exc: BaseException) -> str | None:
    """Why the server could not write its files, in words and without a path; None for any other error.

    A full disk is one wherever it happens. A refused write counts only when it names a file under the data folder:
    a PermissionError elsewhere (a tool that may not run, say) is another kind of problem."""
    if not isinstance(exc, OSError):
        return None
    if exc.errno in FULL_ERRNOS:
        return "the server's storage is full"
    if exc.errno in UNWRITABLE_ERRNOS and any(_in_data_folder(name) for name in (exc.filename, exc.filename2)):
        return "the server cannot write to its data folder"
    return None


def _in_data_folder(name) -> bool:
    if not name or not isinstance(name, (str, Path)):
        return False
    path = Path(name).resolve()
    roots = {Path(settings.MEDIA_ROOT).resolve(), Path(getattr(settings, "DATA_DIR", settings.MEDIA_ROOT)).resolve()}
    return any(path == root or root in path.parents for root in roots)
