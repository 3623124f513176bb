"""What the runtime and the stages raise."""


class JobNotAllowed(Exception):
    """The stage or action cannot run now; the message says why (the API answers 409)."""


class JobCancelled(Exception):
    """Raised inside a running stage, at its next report, once cancellation was requested."""


class StageError(Exception):
    """A stage cannot do its work; the message tells the user why and what to do. The runner shows the message
    alone (no traceback). `result`, when given, is kept on the failed job (what was measured before it failed)."""

    def __init__(self, message: str = "", *, result: dict | None = None):
        super().__init__(message)
        self.result = result


def user_text(text: str) -> str:
    """A message or traceback as a user may read it: no absolute server paths (the data folder, the code, the
    virtualenv), so an error never tells where the server keeps files or whether a path exists."""
    import sys

    from django.conf import settings

    from tango_common.options import scrub_paths

    roots = [settings.MEDIA_ROOT, getattr(settings, "DATA_DIR", ""), settings.BASE_DIR, sys.prefix, sys.base_prefix]
    return scrub_paths(text, roots=[str(r) for r in roots if r])


class JobNotQueued(Exception):
    """The broker did not take the job; it was marked failed and the message says so (the API answers 503)."""
