"""Side environments: engines whose pins clash with the portal's (rknn-toolkit2 wants numpy <= 1.26, onnx 1.18, an
old protobuf; the TFLite converter brings TensorFlow) run in a virtualenv of their own, next to the portal's under
~/.cache/tango, keyed by the hash of their pins so a change of pins builds a fresh one. Django-free; here in
tango_common because both the converters (deployment.engine) and the wizard's support table read it.

The portal never imports their packages: a converter sends a JSON job to a worker script run by the side env's
Python (`run_json`) and reads a JSON report back. Building one takes minutes and ~1-2 GB, so it is an explicit
step (`./tango engines install NAME`), never a side effect of a conversion or of the test suite.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path


def cache_root() -> Path:
    return Path(os.environ.get("TANGO_VENV_ROOT") or Path.home() / ".cache" / "tango")


class SideEnvError(RuntimeError):
    """The side environment is missing, failed to build, or its worker failed; the message says which and why."""


@dataclass(frozen=True)
class SideEnv:
    """One engine's virtualenv. `steps` are pip install argument lists run in order (e.g. a package with --no-deps,
    then the lean list of what it really needs); `probe` is Python that prints a JSON dict of versions."""

    name: str
    python: str  # the interpreter that builds it (its minor version must have wheels for every pin)
    steps: tuple[tuple[str, ...], ...]
    probe: str
    size_hint: str = ""

    @property
    def key(self) -> str:
        text = json.dumps([self.python_version(), self.steps], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:12]

    def python_version(self) -> str:
        return self.python if self.python.startswith("3.") else f"{sys.version_info[0]}.{sys.version_info[1]}"

    @property
    def path(self) -> Path:
        return cache_root() / f"engine-{self.name}-{self.key}"

    @property
    def interpreter(self) -> Path:
        return self.path / "bin" / "python"

    def ready(self) -> bool:
        return (self.path / ".complete").exists() and self.interpreter.exists()

    def install_command(self) -> str:
        return f"./tango engines install {self.name}"

    def missing(self) -> str | None:
        if self.ready():
            return None
        return (f"its own environment, which is not installed on this server (run `{self.install_command()}`"
                + (f"; {self.size_hint}" if self.size_hint else "") + ").")

    def versions(self) -> dict[str, str]:
        """What the side env's probe reports; {} when it is not installed (cached in the env's folder)."""
        if not self.interpreter.exists():
            return {}
        cached = self.path / "versions.json"
        if cached.exists():
            return json.loads(cached.read_text())
        done = subprocess.run([str(self.interpreter), "-c", self.probe], capture_output=True, text=True,
                              timeout=300, env=self.environ())
        if done.returncode:
            raise SideEnvError(f"{self.name}: its environment does not start: {done.stderr.strip()[-400:]}")
        versions = json.loads(done.stdout.strip().splitlines()[-1])
        cached.write_text(json.dumps(versions))
        return versions

    def package_version(self, package: str) -> str:
        """The version of one distribution installed in this environment (the probe's, else asked there)."""
        if package in (known := self.versions()):
            return known[package]
        done = subprocess.run([str(self.interpreter), "-c", "import sys, importlib.metadata as m; "
                               "print(m.version(sys.argv[1]))", package], capture_output=True, text=True,
                              timeout=60, env=self.environ())
        if done.returncode:
            raise SideEnvError(f"{self.name}: {package} is not installed in its environment.")
        return done.stdout.strip()

    def environ(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
        env.update(PYTHONNOUSERSITE="1", TF_CPP_MIN_LOG_LEVEL="2", PYTHONUNBUFFERED="1")
        return env

    def install(self, log: Callable[[str], None] = print) -> Path:
        """Build the env (idempotent: a complete one is kept). A failed build leaves nothing behind. One builder at
        a time: a second caller (another clone's CI, a second `./tango engines install`) waits for the first and
        then finds its env ready, instead of deleting the staging folder the first is filling."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                log(f"{self.name}: another process is building this environment; waiting for it")
                fcntl.flock(lock, fcntl.LOCK_EX)
            return self._build(log)

    def _build(self, log: Callable[[str], None]) -> Path:
        if self.ready():
            log(f"{self.name}: already installed at {self.path}")
            return self.path
        base = shutil.which(f"python{self.python_version()}") if self.python.startswith("3.") else sys.executable
        base = base or sys.executable
        staging = self.path.with_name(self.path.name + ".building")
        shutil.rmtree(staging, ignore_errors=True)
        log(f"{self.name}: building its environment at {self.path} (minutes; {self.size_hint or 'pip'})")
        try:
            _run([_real_python(base), "-m", "venv", str(staging)], log)
            pip = [str(staging / "bin" / "python"), "-m", "pip", "install", "--no-input", "--progress-bar", "off"]
            for step in self.steps:
                log(f"{self.name}: pip install {' '.join(step)}")
                _run([*pip, *step], log)
            _fix_venv_paths(staging, self.path)
            staging.rename(self.path)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        versions = self.versions()
        (self.path / ".complete").write_text(json.dumps(versions))
        log(f"{self.name}: ready — " + ", ".join(f"{k} {v}" for k, v in versions.items()))
        return self.path

    def run_json(self, worker: Path, job: dict, *, timeout: int = 1800, log: Callable[[str], None] | None = None
                 ) -> dict:
        """Run the worker script in the side env with `job` as JSON; its last stdout line is the JSON report.
        Lines it prints before that go to `log`. A failure raises SideEnvError with the worker's own message."""
        if not self.ready():
            raise SideEnvError(f"{self.name}: {self.missing()}")
        with tempfile.TemporaryDirectory(prefix=f"tango-{self.name}-") as tmp:
            job_file = Path(tmp) / "job.json"
            job_file.write_text(json.dumps(job))
            done = subprocess.run([str(self.interpreter), str(worker), str(job_file)],
                                  capture_output=True, text=True, timeout=timeout, env=self.environ(), cwd=tmp)
        lines = done.stdout.strip().splitlines()
        if log:
            for line in lines[:-1]:
                log(line)
        try:
            result = json.loads(lines[-1]) if lines else {}
        except json.JSONDecodeError:
            result = {}
        if done.returncode or "error" in result or not result:
            why = result.get("error") or (done.stderr.strip().splitlines() or ["no output"])[-1]
            raise SideEnvError(f"{self.name} worker failed: {why}"[:1500])
        return result


def _real_python(path: str) -> str:
    """pyenv shims re-exec through a shell script: venv needs the interpreter itself."""
    done = subprocess.run([path, "-c", "import sys; print(sys.executable)"], capture_output=True, text=True)
    return done.stdout.strip() or path


def _fix_venv_paths(staging: Path, final: Path) -> None:
    """A venv built under a staging name is moved to its final one: rewrite the paths it wrote."""
    old, new = str(staging), str(final)
    for item in [staging / "pyvenv.cfg", *(staging / "bin").iterdir()]:
        if item.is_file() and not item.is_symlink():
            try:
                text = item.read_text()
            except (UnicodeDecodeError, OSError):
                continue
            if old in text:
                item.write_text(text.replace(old, new))


def _run(command: list[str], log: Callable[[str], None]) -> None:
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-25:])
        raise SideEnvError(f"`{' '.join(command[-6:])}` failed:\n{tail}")


# --- the engines that need one ------------------------------------------------------------------------------------

RKNN = SideEnv(
    name="rknn",
    python="3.11",
    steps=(
        ("--no-deps", "rknn-toolkit2==2.3.2"),
        # The CPU build of torch lies on this disk (pip takes it from there); rknn-toolkit2 imports torch at start.
        ("torch==2.13.0", "numpy<=1.26.4", "onnx==1.18.0", "onnxruntime<1.27", "protobuf>=4.21.6,<=4.25.4",
         "opencv-python-headless<4.12", "setuptools<82", "psutil", "ruamel.yaml", "scipy", "tqdm", "fast-histogram",
         "filelock", "typing-extensions", "sympy", "networkx", "jinja2", "fsspec"),
    ),
    probe=("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
           "('rknn-toolkit2', 'onnx', 'onnxruntime', 'numpy', 'torch')}))"),
    size_hint="about 1.5 GB, a few minutes",
)

TFLITE = SideEnv(
    name="tflite",
    python="3.11",
    steps=(
        # onnx2tf declares the onnx / onnxruntime / graph-surgeon versions it works with: let pip pick them
        ("tensorflow-cpu==2.19.0", "tf-keras==2.19.0", "onnx2tf==1.29.24", "psutil"),
        # a bundle's infer.py / smoke_test.py read images with Pillow: the package stage checks TFLite bundles here
        ("pillow",),
    ),
    probe=("import json, importlib.metadata as m; print(json.dumps({p: m.version(p) for p in "
           "('onnx2tf', 'tensorflow-cpu', 'ai-edge-litert', 'onnx', 'onnxruntime', 'numpy', 'pillow')}))"),
    size_hint="about 2.6 GB, about 5 minutes",
)

SIDE_ENVS = {env.name: env for env in (RKNN, TFLITE)}
