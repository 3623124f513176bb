"""Child processes: ones that do not outlive the process that started them, and the environment of a one-thread
model child."""

import ctypes
import os
import signal
from pathlib import Path

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


CHECKOUT = Path(__file__).resolve().parents[1]
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1"}


def one_thread_child_env() -> dict[str, str]:
    """The environment of a `python -m <this checkout's module>` child that runs one model on one thread (a timing,
    an uploaded model's check): every math library on one thread, and this checkout importable from any working
    folder."""
    return {**os.environ, **ONE_THREAD,
            "PYTHONPATH": os.pathsep.join(p for p in (str(CHECKOUT), os.environ.get("PYTHONPATH", "")) if p)}
