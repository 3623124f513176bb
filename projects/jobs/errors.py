"""What the runtime and the stages raise."""


class JobNotAllowed(Exception):
    """The stage or action cannot run now; the message says why (the API answers 409)."""


class JobCancelled(Exception):
    """Raised inside a running stage, at its next report, once cancellation was requested."""


class StageError(Exception):
    """A stage cannot do its work; the message tells the user why and what to do."""


class JobNotQueued(Exception):
    """The broker did not take the job; it was marked failed and the message says so (the API answers 503)."""
