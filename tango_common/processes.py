"""Child processes that do not outlive the process that started them."""

import ctypes
import signal

PR_SET_PDEATHSIG = 1

try:  # looked up here, not in a child between fork and exec, where only the call itself is safe
    _prctl = ctypes.CDLL(None, use_errno=True).prctl
except (OSError, AttributeError):  # not Linux
    _prctl = None


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """Ask the kernel to send this process sig when its parent dies, even by SIGKILL (Linux; elsewhere nothing).

    Call it in a child before exec (subprocess's preexec_fn), or early in a process that should not run on alone."""
    if _prctl is not None:
        _prctl(PR_SET_PDEATHSIG, int(sig))
