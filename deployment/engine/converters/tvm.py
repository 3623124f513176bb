"""Apache TVM (Relax): the ONNX model compiled by TVM into one shared library for a CPU target.

- host: `{"kind": "llvm", "mcpu": <this CPU>}`; the library is loaded and run here and compared with the
  reference (the PyTorch model's output, through the registry's checks).
- aarch64 (Odroid, Jetson's CPU, Raspberry Pi class boards): cross-compiled with Debian's `g++-aarch64-linux-gnu`;
  the library is checked to be an AArch64 ELF and "runs on device" (it cannot run here).
- tuned: MetaSchedule searches schedules for each fused operator within a trial and a time budget (`tune()`); the
  database it fills is applied at compile time. Untuned TVM on a CPU is slow (naive default schedules), so the
  report carries both latencies and never calls an untuned build fast.

Tuning builds and measures candidates in this process: MetaSchedule's default builder and runner start worker
processes that each import TVM (30+ s on a loaded two-core server), which killed every candidate on its timeout,
and link every candidate with g++.
Django-free.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

from .base import (
    Artifact,
    CalibrationSet,
    ConversionError,
    Report,
    Runner,
    Source,
    per_item,
    say,
)
from .graph import static_batch_one

CROSS_CXX = "aarch64-linux-gnu-g++"
CROSS_PACKAGE = "g++-aarch64-linux-gnu"
ELF_MACHINES = {62: "x86_64", 183: "aarch64", 40: "arm"}
TARGETS = ("host", "aarch64")
# TVM's thread pool pins the thread that uses it to a core (core 0 with one thread) and never lets go: a worker process
# that tuned, benchmarked or tried a TVM artifact ran every later job (training included) on one core, and so did every
# process it started, as they inherit the mask. TVM reads this whenever it sets its pool up, so before any use here.
os.environ.setdefault("TVM_BIND_THREADS", "0")


def host_cpu() -> str:
    import tvm

    return str(tvm.target.codegen.llvm_get_system_cpu())


def target_for(name: str, *, mcpu: str | None = None):
    """The TVM target (dict form: target strings with flags are refused by TVM 0.2x)."""
    import tvm

    if name == "host":
        spec = {"kind": "llvm", "mcpu": mcpu or host_cpu(), "num-cores": os.cpu_count() or 1}
    elif name == "aarch64":
        spec = {"kind": "llvm", "mtriple": "aarch64-linux-gnu", "mattr": ["+neon"]}
        if mcpu:
            spec["mcpu"] = mcpu
    else:
        raise ConversionError(f"Unknown TVM target {name!r}; known: {', '.join(TARGETS)}.")
    return tvm.target.Target(spec)


def elf_machine(path: Path) -> str:
    """The architecture an ELF shared library was built for (e_machine), e.g. "aarch64"."""
    head = Path(path).read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        return "not an ELF file"
    machine = int.from_bytes(head[18:20], "little" if head[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"machine {machine}")


def cross_compiler() -> str | None:
    return shutil.which(CROSS_CXX)


def import_onnx(onnx_path: Path, input_size: int):
    """(Relax IRModule, input name) for a batch-1 static-shape import of the ONNX file (static_batch_one)."""
    import onnx
    from tvm.relax.frontend.onnx import from_onnx

    model = onnx.load(str(onnx_path))
    initializers = {i.name for i in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in initializers]
    if len(inputs) != 1:
        raise ConversionError(f"TVM: expected one image input, the ONNX model has {len(inputs)}.")
    name = inputs[0].name
    model = static_batch_one(model, input_size)
    try:
        mod = from_onnx(model, shape_dict={name: [1, 3, input_size, input_size]}, keep_params_in_input=False)
    except Exception as error:  # the frontend names the operator it cannot import
        raise ConversionError(f"TVM's ONNX frontend cannot import this model: {type(error).__name__}: "
                              f"{str(error)[:300]}") from error
    return mod, name


def _frames(frame) -> list:
    import inspect
    import linecache

    out = []
    while frame is not None:
        code = frame.f_code
        line = linecache.getline(code.co_filename, frame.f_lineno)
        out.append(inspect.FrameInfo(frame, code.co_filename, frame.f_lineno, code.co_name, [line] if line else None,
                                     0 if line else None))
        frame = frame.f_back
    return out


def load_tensor_intrinsics() -> None:
    """Import TVM's tensor intrinsics (MetaSchedule needs them) in seconds, not minutes.

    Importing `tvm.s_tir.tensor_intrin` parses a few hundred TVMScript functions, each of which calls
    `inspect.stack()`; that looks up the module of every frame's source file by scanning sys.modules, which with
    torch loaded took 270 s on a busy two-core server. The frames it needs (their code line included) are built
    from linecache instead, only for the duration of that import: 14 s there."""
    import inspect
    import sys

    if "tvm.s_tir.tensor_intrin" in sys.modules:
        return
    stack, outer = inspect.stack, inspect.getouterframes
    inspect.stack = lambda context=1: _frames(sys._getframe(1))
    inspect.getouterframes = lambda frame, context=1: _frames(frame)
    try:
        import tvm.s_tir.tensor_intrin  # noqa: F401
    finally:
        inspect.stack, inspect.getouterframes = stack, outer


def _in_process_builder_and_runner(deadline: float | None, report: Report | None):
    """A MetaSchedule builder and runner that work in this process: a candidate is compiled by LLVM into memory
    and timed right here (no worker processes, no linker). Past the deadline (time.monotonic()) candidates are
    refused unbuilt, so every task runs out of trials at once and the search ends cleanly."""
    import tvm
    from tvm.ir.utils import derived_object
    from tvm.s_tir.meta_schedule.builder import BuilderResult, PyBuilder
    from tvm.s_tir.meta_schedule.builder.local_builder import default_build
    from tvm.s_tir.meta_schedule.runner import EvaluatorConfig, PyRunner
    from tvm.s_tir.meta_schedule.runner.local_runner import LocalRunnerFuture, default_alloc_argument
    from tvm.s_tir.meta_schedule.runner.utils import run_evaluator_common

    scratch = Path(tempfile.mkdtemp(prefix="tango-tvm-tune-"))
    built: dict[str, object] = {}
    state = {"told": False, "built": 0}  # past the deadline, still build one candidate: a budget spent on
    # preparing the tasks (a busy server) must not leave a "tuned" library with nothing measured

    @derived_object
    class InProcessBuilder(PyBuilder):
        def build(self, build_inputs):
            results = []
            for item in build_inputs:
                if deadline is not None and time.monotonic() > deadline and state["built"]:
                    if not state["told"]:
                        state["told"] = True
                        say(report, "TVM tuning: the time budget is spent; the remaining trials are skipped.")
                    results.append(BuilderResult(None, "time budget spent"))
                    continue
                try:
                    module = default_build(item.mod, item.target, None)
                    # a folder per candidate: MetaSchedule's RemoveBuildArtifact deletes the artifact's folder
                    key = str(Path(tempfile.mkdtemp(dir=scratch)) / "candidate")
                    built[key] = module
                    state["built"] += 1
                    results.append(BuilderResult(key, None))
                except Exception as error:  # noqa: BLE001 - a candidate that fails to build is a failed trial
                    results.append(BuilderResult(None, f"{type(error).__name__}: {str(error)[:500]}"))
            return results

    @derived_object
    class InProcessRunner(PyRunner):
        def __init__(self):
            super().__init__()
            self.config = EvaluatorConfig(number=3, repeat=1, min_repeat_ms=10, enable_cpu_cache_flush=False)

        def run(self, runner_inputs):
            futures = []
            for item in runner_inputs:
                try:
                    module = built.pop(str(item.artifact_path))
                    device = tvm.runtime.device(str(item.device_type), 0)
                    args = default_alloc_argument(device, tuple(a.as_json() for a in item.args_info), 1)
                    costs = run_evaluator_common(module, device, self.config, args)
                    futures.append(LocalRunnerFuture(res=costs))
                except Exception as error:  # noqa: BLE001 - a candidate that fails to run is a failed trial
                    futures.append(LocalRunnerFuture(error_message=f"{type(error).__name__}: {str(error)[:500]}"))
            return futures

    return InProcessBuilder(), InProcessRunner(), scratch


def tune(mod, target, *, work_dir: Path, trials: int, seconds: float | None = None, report: Report | None = None
         ) -> dict:
    """MetaSchedule over every fused operator of `mod`, at most `trials` measured candidates in all (spread over the
    tasks) and at most `seconds` of search. The records land in work_dir (a JSON database `compile_module`
    applies). Returns what it did: tasks, trials measured, seconds."""
    import tvm
    from tvm import relax
    from tvm.s_tir import meta_schedule as ms

    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    load_tensor_intrinsics()
    with target:
        prepared = tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            relax.get_pipeline("zero")])(mod)
    tasks = ms.relax_integration.extract_tasks(prepared, target)
    per_task = max(1, -(-trials // max(1, len(tasks))))
    say(report, f"TVM tuning: {len(tasks)} operator tasks, {trials} trials in all ({per_task} per task)"
                + (f", at most {seconds:.0f} s" if seconds else "") + ".")
    # the time budget is the search's: preparing the tasks is not counted against it
    builder, runner, scratch = _in_process_builder_and_runner(time.monotonic() + seconds if seconds else None, report)
    try:
        import xgboost  # noqa: F401

        cost_model, strategy = "xgb", "evolutionary"
    except ImportError:
        # MetaSchedule's learned cost model needs xgboost, which the portal does not install. Without it an
        # evolutionary search is guided by noise at a high price (hundreds of trace replays per round), so sample
        # schedules at random and keep the fastest measured one.
        cost_model, strategy = "random", "replay-trace"
    logging_level = _quiet_metaschedule()
    # MetaSchedule's logging set-up names the handlers already on its logger in a dictConfig, which fails on any it
    # did not create (e.g. one a test framework attached): set those aside while it runs.
    ms_logger = logging.getLogger("tvm.s_tir.meta_schedule")
    foreign = [h for h in ms_logger.handlers if not (h.get_name() or "").startswith("tvm.")]
    for handler in foreign:
        ms_logger.removeHandler(handler)
    try:
        database = ms.relax_integration.tune_relax(
            prepared, params={}, target=target, work_dir=str(work_dir), max_trials_global=trials,
            max_trials_per_task=per_task, num_trials_per_iter=min(64, per_task), builder=builder, runner=runner,
            cost_model=cost_model, strategy=strategy, seed=0)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
        _quiet_metaschedule(logging_level)
        for handler in foreign:
            ms_logger.addHandler(handler)
    records = database.get_all_tuning_records()
    measured = [r for r in records if r.run_secs and min(float(getattr(s, "value", s)) for s in r.run_secs) < 1e9]
    return {"tasks": len(tasks), "trials": len(records), "measured": len(measured), "cost_model": cost_model,
            "strategy": strategy, "seconds": round(time.monotonic() - started, 1),
            "budget": {"trials": trials, "seconds": seconds}}


def _quiet_metaschedule(level=None):
    """MetaSchedule prints a table per trial batch to the root logger; keep the job's log readable."""
    import logging

    logger = logging.getLogger("tvm.s_tir.meta_schedule")
    previous = logger.level
    logger.setLevel(logging.WARNING if level is None else level)
    return previous


def compile_module(mod, target, *, tuning_dir: Path | None = None):
    """Relax module -> executable, with the tuning records of tuning_dir applied when given."""
    import tvm
    from tvm import relax
    from tvm.s_tir import meta_schedule as ms

    if tuning_dir is None:
        return tvm.compile(mod, target=target)
    load_tensor_intrinsics()
    database = ms.database.JSONDatabase(work_dir=str(tuning_dir), allow_missing=False)
    with target, database:
        applied = tvm.transform.Sequential([
            relax.transform.DecomposeOpsForInference(), relax.transform.CanonicalizeBindings(),
            relax.get_pipeline("zero"), relax.transform.MetaScheduleApplyDatabase(str(tuning_dir))])(mod)
    return tvm.compile(applied, target=target)


def export(executable, path: Path, *, target_name: str) -> None:
    if target_name == "aarch64":
        from tvm.support import cc

        compiler = cross_compiler()
        if compiler is None:
            raise ConversionError(f"TVM aarch64: the cross compiler {CROSS_CXX} is missing (Debian package "
                                  f"{CROSS_PACKAGE}; `./tango engines install tvm` installs it).")
        executable.export_library(str(path), fcompile=cc.cross_compiler(compiler))
    else:
        executable.export_library(str(path))


def vm_runner(path: Path, *, threads: int | None = None) -> Runner:
    """batch-1 float32 (1, 3, S, S) -> first output, through TVM's Relax VM on this CPU."""
    import tvm
    from tvm import relax

    if threads:
        config = tvm.get_global_func("runtime.config_threadpool", allow_missing=True)
        if config is not None:
            config(0, int(threads))
    module = tvm.runtime.load_module(str(path))
    vm = relax.VirtualMachine(module, tvm.cpu())
    main = vm["main"]
    device = tvm.cpu()

    def run_one(batch: np.ndarray) -> np.ndarray:
        output = main(tvm.runtime.tensor(np.ascontiguousarray(batch, dtype=np.float32), device))
        while not hasattr(output, "numpy"):
            output = output[0]
        return output.numpy()

    return per_item(run_one)


def latency_ms(run: Runner, input_size: int, *, warmup: int = 2, repeat: int = 10) -> float:
    """Median latency at batch 1 (for the tuned-vs-untuned line of the report; the benchmark stage measures
    every artifact properly)."""
    batch = np.random.default_rng(0).random((1, 3, input_size, input_size), dtype=np.float32)
    for _ in range(warmup):
        run(batch)
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        run(batch)
        times.append(1000 * (time.perf_counter() - started))
    return float(np.median(times))


class TvmConverter:
    """options: target ("host" | "aarch64"), mcpu (aarch64: e.g. "cortex-a55" for rk3568, "cortex-a57" for the
    Jetson Nano), tuning_dir (a MetaSchedule database from `tune`, host only), tune_trials / tune_seconds (tune
    during the conversion itself; the tune stage does it as its own job)."""

    engine = "tvm"
    label = "Apache TVM"
    runtime_modules = ("tvm", "tvm.relax")  # what load() imports (benchmark: imported before the memory baseline)

    def missing(self) -> str | None:
        try:
            import tvm  # noqa: F401
            from tvm.relax.frontend import onnx  # noqa: F401
        except ImportError as error:
            return f"apache-tvm is not installed on this server ({error})."
        return None

    def precisions(self) -> tuple[str, ...]:
        return () if self.missing() else ("fp32",)

    def targets(self) -> dict[str, str | None]:
        """target -> why it is unavailable here (None when it is available)."""
        return {"host": self.missing(),
                "aarch64": self.missing() or (None if cross_compiler() else
                                              f"the cross compiler {CROSS_CXX} is missing (Debian package "
                                              f"{CROSS_PACKAGE}).")}

    def versions(self) -> dict[str, str]:
        import importlib.metadata as metadata

        out = {}
        for package in ("apache-tvm", "apache-tvm-ffi", "onnx"):
            try:
                out[package] = metadata.version(package)
            except metadata.PackageNotFoundError:
                pass
        return out

    def convert(self, source: Source, *, precision: str, out_dir: Path, calibration: CalibrationSet | None = None,
                options: dict | None = None, report: Report | None = None) -> Artifact:
        options = dict(options or {})
        if precision != "fp32":
            raise ConversionError(f"Apache TVM builds fp32 in this version, not {precision}.")
        target_name = options.get("target", "host")
        out_dir = Path(out_dir)
        out_dir.mkdir(parents=True, exist_ok=True)
        target = target_for(target_name, mcpu=options.get("mcpu"))
        started = time.monotonic()
        mod, input_name = import_onnx(source.onnx_path, source.input_size)
        tuning_dir = options.get("tuning_dir")
        tuning = None
        if options.get("tune_trials"):
            tuning_dir = Path(out_dir) / f"tvm-tuning-{target_name}"
            tuning = tune(mod, target, work_dir=tuning_dir, trials=int(options["tune_trials"]),
                          seconds=options.get("tune_seconds"), report=report)
        suffix = "-tuned" if tuning_dir else ""
        path = out_dir / f"model-tvm-{target_name}{suffix}-{precision}.so"
        executable = compile_module(mod, target, tuning_dir=Path(tuning_dir) if tuning_dir else None)
        export(executable, path, target_name=target_name)
        machine = elf_machine(path)
        expected = "aarch64" if target_name == "aarch64" else os.uname().machine
        if machine != expected:
            raise ConversionError(f"TVM {target_name}: the library was built for {machine}, not {expected}.")
        meta = {"target": str(target.export() if hasattr(target, "export") else target), "target_name": target_name,
                "input": input_name, "input_shape": [1, 3, source.input_size, source.input_size],
                "elf_machine": machine, "tuned": bool(tuning_dir), "tuning": tuning,
                "compile_seconds": round(time.monotonic() - started, 1)}
        meta_path = path.with_suffix(".json")
        meta_path.write_text(json.dumps(meta, indent=2, default=str))
        runs_here = target_name == "host"
        say(report, f"Apache TVM {target_name}{' tuned' if tuning_dir else ' (untuned)'}: compiled for "
                    f"{meta['target']} in {meta['compile_seconds']} s; {machine} library"
                    + ("." if runs_here else ", runs on the device (it cannot run on this server)."))
        notes = [] if runs_here else [f"Cross-compiled for {machine}: copy {path.name} to the device and load it "
                                      f"with the TVM runtime of the same version ({self.versions().get('apache-tvm')})"
                                      "; it does not run on this server."]
        if not tuning_dir:
            notes.append("Untuned: TVM's default CPU schedules; the tune stage searches faster ones.")
        return Artifact(engine=self.engine, precision=precision, path=path, files=[path, meta_path],
                           task=source.task, input_size=source.input_size, runs_here=runs_here,
                           converter_versions=self.versions(), calibration=None,
                           options={k: v for k, v in {**options, "target": target_name}.items()
                                    if k not in ("tuning_dir",)} | ({"tuned": True} if tuning_dir else {}),
                           notes=notes)

    def load(self, artifact: Artifact, *, threads: int | None = None) -> Runner:
        if not artifact.runs_here:
            raise ConversionError(f"{artifact.path.name} is built for {elf_machine(artifact.path)}; it runs on the "
                                  "device, not on this server.")
        return vm_runner(artifact.path, threads=threads)
