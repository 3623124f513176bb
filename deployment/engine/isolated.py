"""Time one runner in a fresh Python process of its own (benchmark.measure's default). Django-free.

Why: a measurement in the worker's (or the bench's) own process runs beside every runtime loaded before it — ONNX
Runtime, OpenVINO and PyTorch thread pools, allocators grown by earlier models, whatever a conversion left — so a
row's figure could depend on the rows before it (an ONNX Runtime int8 artifact once read 5.94 ms inside the bench
and 4.19 ms alone). Here each row starts from the same state: a new interpreter, one thread everywhere
(OMP/MKL/OpenBLAS pinned to one as well), only the runtime it needs loaded, and its own peak memory. The same holds
for PyTorch eager, the baseline. Peak memory is only measured here (timing.PeakMemory): a process that ran models
before reuses the pages they freed.

The parent pickles the loader (benchmark.EagerLoader / ArtifactLoader: a module, or an artifact and its options),
the input batch and the timing settings into a temporary folder, runs `python -m deployment.engine.isolated IN OUT`
and reads the figures back. While the child runs, the parent calls `report(None)` twice a second, so a cancelled
job stops it (the child is killed). A loader that cannot be pickled raises NotSendable; the caller times it in its
own process and says so.
"""

from __future__ import annotations

import json
import pickle
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from tango_common.processes import CHECKOUT, one_thread_child_env

TIMEOUT_S = 900.0
POLL_S = 0.5


class NotSendable(RuntimeError):
    """The loader cannot be sent to a timing process (it does not pickle)."""


def measure_in_child(load, *, batch, reference=None, settings: dict, report=None,
                     timeout_s: float = TIMEOUT_S) -> dict:
    """benchmark.time_here's figures, measured in a fresh process; `isolated: True` and its pid are added."""
    try:
        payload = pickle.dumps({"load": load, "reference": reference, "batch": batch, "settings": settings},
                               protocol=pickle.HIGHEST_PROTOCOL)
    except Exception as error:  # noqa: BLE001 - anything pickle refuses: a local class, a live session, a lambda
        raise NotSendable(f"{type(error).__name__}: {str(error)[:200]}") from error
    with tempfile.TemporaryDirectory(prefix="tango-timing-") as scratch:
        folder = Path(scratch)
        (folder / "in.pkl").write_bytes(payload)
        env = one_thread_child_env()
        with open(folder / "stderr.txt", "wb") as stderr:
            child = subprocess.Popen([sys.executable, "-m", "deployment.engine.isolated", str(folder / "in.pkl"),
                                      str(folder / "out.json")], stdout=subprocess.DEVNULL, stderr=stderr,
                                     env=env, cwd=CHECKOUT)
            try:
                _wait(child, report, timeout_s)
            finally:
                if child.poll() is None:
                    child.kill()
                    child.wait()
        if child.returncode != 0 or not (folder / "out.json").exists():
            tail = (folder / "stderr.txt").read_text(errors="replace").strip()[-600:]
            raise RuntimeError(f"the timing process failed (exit {child.returncode}): {tail}")
        figures = json.loads((folder / "out.json").read_text())
    return {**figures, "isolated": True, "timing_pid": child.pid}


def _wait(child: subprocess.Popen, report, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            child.wait(timeout=POLL_S)
            return
        except subprocess.TimeoutExpired:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the timing process did not finish within {timeout_s:.0f} s") from None
            if report is not None:
                report(None)  # a cancelled job raises here; the caller's finally kills the child


def main(argv: list[str]) -> int:
    from .benchmark import time_here

    source, dest = Path(argv[0]), Path(argv[1])
    payload = pickle.loads(source.read_bytes())
    figures, _ = time_here(payload["load"], batch=payload["batch"], reference=payload["reference"], memory=True,
                           **payload["settings"])
    dest.write_text(json.dumps(figures))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
