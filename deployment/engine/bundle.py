"""The downloadable bundle, per device tier: what a team downloads to run its model where it is meant to run.

Every bundle (one zip, reproducible bytes) holds the model file(s) for the engine, `runtime.py` (that engine's
loader), `infer.py` (classification or detection), the preprocessing it imports, `requirements.txt` pinned to the
versions the portal checked it with, `smoke_test.py` with a few sample images and what the PyTorch model answered
for them, a README in words and `SHA256SUMS`. A model file only the device runs (RKNN's .rknn, TVM's library
cross-compiled for aarch64) runs there on the runtime of the toolkit that built it, pinned for that architecture;
beside it go model.onnx and `runtime_host.py` (ONNX Runtime), which run everywhere else: the check here, and the
user's own before the board is at hand. By tier:

- on-device (boards, Jetsons, phones): the above.
- PC and cloud: plus `serve.py` (a small HTTP inference server, standard library only), `healthcheck.py` and a
  `Dockerfile` whose HEALTHCHECK calls it.
- K8S: the PC/cloud files plus `k8s/deployment.yaml` and `k8s/service.yaml` (readiness and liveness probes on
  /healthz; an `nvidia.com/gpu` request when the device has an NVIDIA GPU).

Django-free: plain arguments in, a zip out.
"""

import hashlib
import json
import platform
import shutil
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

import numpy as np
import yaml

import tango_common
from tango_common import images, runtime_loader
from tango_common.images import IMAGENET_MEAN, IMAGENET_STD

from . import bundle_infer, detect_infer
from .converters.base import TRAINED_REFERENCE
from .detect_infer import PAD_VALUE

FILES = Path(__file__).with_name("bundle_files")
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store; real dates would make every build differ
PORT = 8080
SAMPLES = 4  # sample images the smoke test runs


class Tier:
    ON_DEVICE, PC, CLOUD, K8S = "on_device", "pc", "cloud", "k8s"
    ALL = (ON_DEVICE, PC, CLOUD, K8S)
    SERVED = (PC, CLOUD, K8S)  # tiers that get the HTTP server, the Dockerfile and the health check


@dataclass(frozen=True)
class Runtime:
    key: str
    label: str
    packages: tuple[str, ...]  # pip distributions infer.py needs for this engine, pinned at build time
    gpu_packages: tuple[str, ...] = ()  # what replaces them on a device with an NVIDIA GPU
    builds_on_device: bool = False
    side_env: str | None = None  # checked in that side environment (tango_common.sideenvs), pinned to its versions
    # The device's runtime for a file only the device runs: (pip distribution, the converter_versions entry whose
    # version it must have), pinned for the device's architecture; `packages` are then what runs model.onnx
    # off the device.
    device_packages: tuple[tuple[str, str], ...] = ()


RUNTIMES = {r.key: r for r in (
    Runtime("onnxruntime", "ONNX Runtime", ("onnxruntime",), gpu_packages=("onnxruntime-gpu",)),
    Runtime("openvino", "OpenVINO", ("openvino",)),
    Runtime("torchscript", "TorchScript (PyTorch)", ("torch",)),
    # The engine builds from model.onnx on the device, with the device's own tensorrt (JetPack on a Jetson: never a
    # PyPI wheel, see JETPACK); onnxruntime runs model.onnx wherever tensorrt does not import (the check here)
    Runtime("tensorrt", "TensorRT", ("onnxruntime",), builds_on_device=True),
    Runtime("tflite", "TensorFlow Lite (LiteRT)", ("ai-edge-litert",), side_env="tflite"),
    # rknn-toolkit-lite2 is the board's side of rknn-toolkit2 and shares its version numbers; on the board numpy is
    # the toolkit's (rknn's compiled modules were built against numpy 1.x)
    Runtime("rknn", "RKNN (Rockchip NPU)", ("onnxruntime",),
            device_packages=(("rknn-toolkit-lite2", "rknn-toolkit2"), ("numpy", "numpy"))),
    Runtime("tvm", "Apache TVM", ("onnxruntime",), device_packages=(("apache-tvm", "apache-tvm"),)),
)}
HOST_MODEL = "model.onnx"  # what runs off the device when the model file only runs on it

# What a TensorRT kit imports that comes with the device, not from requirements.txt: on a Jetson, JetPack's own builds
# (PyPI's aarch64 torch is CPU-only and PyPI has no tensorrt for Jetsons). Import name -> where it comes from.
JETPACK = {
    "tensorrt": "TensorRT's Python bindings: JetPack ships them on a Jetson (with trtexec); on a PC or cloud GPU "
                "`pip install tensorrt` matching the CUDA driver",
    "torch": "runtime.py's GPU buffers: torch with CUDA, on a Jetson NVIDIA's JetPack build of torch (PyPI's aarch64 "
             "wheel is CPU-only)",
    "cuda": "trt_build.py's GPU buffers when torch has no CUDA: cuda-python (`from cuda import cudart`) at the "
            "version of the device's CUDA (JetPack's on a Jetson)",
}

# How close the bundle's answers must come to the PyTorch model's, by precision (read by smoke_test.py).
TOLERANCES = {
    "classification": {"fp32": {"probability": 0.01, "min_agreement": 1.0},
                       "fp16": {"probability": 0.03, "min_agreement": 1.0},
                       "bf16": {"probability": 0.05, "min_agreement": 0.75},
                       "int8": {"probability": 0.10, "min_agreement": 0.75}},
    "detection": {"fp32": {"iou": 0.9, "score": 0.02, "min_agreement": 1.0},
                  "fp16": {"iou": 0.8, "score": 0.05, "min_agreement": 1.0},
                  "bf16": {"iou": 0.6, "score": 0.1, "min_agreement": 0.75},
                  "int8": {"iou": 0.5, "score": 0.15, "min_agreement": 0.75}},
}


@dataclass(frozen=True)
class Target:
    """The device, as the catalog describes it."""

    name: str
    tier: str
    accelerator: str = "none"
    cpu_arch: str = "x86_64"
    memory_mb: int = 0

    @property
    def gpu(self) -> bool:
        return self.accelerator == "nvidia_gpu"


class RunnerSession:
    """A function batch -> raw outputs behind the ONNX Runtime session interface infer.py drives (the PyTorch
    reference of the smoke test, an artifact the portal runs for Try it)."""

    class _Input:
        name = "images"

    def __init__(self, run: Callable[[np.ndarray], np.ndarray]):
        self._run = run

    def get_inputs(self):
        return [self._Input()]

    def run(self, _names, feed):
        output = self._run(next(iter(feed.values())))
        if isinstance(output, list | tuple):  # a runner that answers every output of the model: the first
            output = output[0]
        return [np.asarray(output)]


def runs_here(device_arch: str | None) -> bool:
    """Whether a file built for `device_arch` runs on this machine (None: a file every machine runs)."""
    from tango_common.runtime_loader import MACHINES

    return device_arch is None or platform.machine().lower() in MACHINES.get(device_arch, (device_arch,))


def pinned_requirements(runtime: Runtime, *, gpu: bool, device_versions: dict | None = None,
                        device_arch: str | None = None) -> str:
    """numpy, Pillow and the engine's packages at the versions installed here, where the bundle was checked. For a
    file only the device runs: the device's runtime at the versions that built the file (device_versions, the
    artifact's converter versions) on the device's architecture, and what runs model.onnx everywhere else."""
    lines = ["# The versions TANGO checked this bundle with."]
    version = metadata.version
    if runtime.side_env:  # checked in the engine's own environment: its versions
        from tango_common.sideenvs import SIDE_ENVS

        env = SIDE_ENVS[runtime.side_env]
        version = lambda package: env.package_version(package)  # noqa: E731
    device, elsewhere = "", ""
    if runtime.device_packages:
        lines[0] = (f"# The versions TANGO built and checked this bundle with: on the device ({device_arch}) its "
                    "runtime, at the version of the toolkit that built the model file")
        if not runs_here(device_arch):
            lines[0] += "; elsewhere what runs model.onnx (the host check)"
            device = f'; platform_machine == "{device_arch}"'
            elsewhere = f'; platform_machine != "{device_arch}"'
        lines[0] += "."
        missing = [recorded for _, recorded in runtime.device_packages if not (device_versions or {}).get(recorded)]
        if missing:
            raise ValueError(f"The {runtime.label} bundle needs the versions that built the model: "
                             f"{', '.join(missing)} not recorded.")
    on_device = {name for name, _ in runtime.device_packages}
    for package in ("numpy", "pillow"):
        lines.append(f"{package}=={version(package)}{elsewhere if package in on_device else ''}")
    for name, recorded in runtime.device_packages:
        lines.append(f"{name}=={device_versions[recorded]}{device}")
    if runtime.device_packages and runs_here(device_arch):
        return "\n".join(lines) + "\n"  # the device's runtime runs the file here too: nothing else to install
    for package, wanted in zip(runtime.packages, runtime.gpu_packages or runtime.packages, strict=True):
        name = wanted if gpu else package
        lines.append(f"{name}=={version(package)}{elsewhere}")
    return "\n".join(lines) + "\n"


def tensorrt_requirements(device_arch: str) -> str:
    """A TensorRT kit's requirements: what ran model.onnx here (numpy, Pillow, ONNX Runtime) at this server's versions;
    the device's TensorRT, and the torch or cuda-python behind its GPU buffers, in comments (JETPACK), never pinned.
    On a Jetson (aarch64) JetPack's Python is 3.10, which this server's numpy and onnxruntime do not install on, and
    NVIDIA's torch wheels for it are built against numpy 1.x: there the pins only hold off the device."""
    jetson = device_arch == "aarch64"
    elsewhere = '; platform_machine != "aarch64"' if jetson else ""
    lines = ["# The versions TANGO checked this bundle with: model.onnx on ONNX Runtime" +
             (", off the device (the Jetson's own are below)." if jetson else "."),
             f"numpy=={metadata.version('numpy')}{elsewhere}",
             f"pillow=={metadata.version('pillow')}",
             f"onnxruntime=={metadata.version('onnxruntime')}{elsewhere}  # runs model.onnx where tensorrt does not "
             "import (the check off the device)"]
    if jetson:
        lines += ["# On the Jetson: JetPack's Python 3.10, and the numpy 1.x NVIDIA's torch for JetPack is built "
                  "against.",
                  'numpy<2; platform_machine == "aarch64"']
    lines.append("# Not pinned here: the device's own, matching its CUDA (on a Jetson JetPack's, never PyPI's wheels; "
                 "make the venv with --system-site-packages so they import). The engine is built on the device from "
                 "model.onnx.")
    lines += [f"#   {module}: {words}" for module, words in JETPACK.items()]
    return "\n".join(lines) + "\n"


def _preprocess(task: str, *, input_size: int, runtime: Runtime, precision: str, model_file: str, model_name: str,
                num_classes: int, gpu: bool, mean, std, extra: dict) -> dict:
    common = {"task": task, "runtime": runtime.key, "precision": precision, "model_file": model_file,
              "model_name": model_name, "gpu": gpu, "input_size": input_size, "color_mode": "RGB",
              "layout": "NCHW", "dtype": "float32", "scale": "1/255", "input_name": "images"}
    if task == "detection":
        from .detect_onnx import DEFAULT_CONF, DEFAULT_IOU

        common.update({"resize": "letterbox (aspect kept, bilinear, centred)", "pad_value": PAD_VALUE,
                       "output": f"(N, 4 + {num_classes}, anchors): cx, cy, w, h in input pixels, then class "
                                 "scores", "conf": DEFAULT_CONF, "iou": DEFAULT_IOU, "max_det": 300})
    else:
        common.update({"resize": "bilinear", "mean": list(mean), "std": list(std),
                       "output": "logits (apply softmax for probabilities)"})
    return {**common, **extra}


def reference_results(task: str, run: Callable, sample_paths: list[Path], *, config: dict,
                      labels: list[str]) -> list[dict]:
    """What the reference model (PyTorch, or an imported model's ONNX form) answers for the samples, through the
    bundle's own pre/post-processing."""
    session = RunnerSession(run)
    if task == "detection":
        return detect_infer.detect(session, sample_paths, input_size=config["input_size"], labels=labels,
                                   conf=config["conf"], iou=config["iou"], max_det=config["max_det"])
    return bundle_infer.predict(session, sample_paths, input_size=config["input_size"], labels=labels,
                                mean=config["mean"], std=config["std"], top_k=min(3, len(labels)))


def build_tier_bundle(*, out_path: Path, task: str, tier: str, runtime: str, model_files: dict[str, Path],
                      class_names: list[str], input_size: int, target: Target, reference: Callable,
                      samples: list[Path], model_info: dict, precision: str = "fp32", checks: list[str] = (),
                      mean=IMAGENET_MEAN, std=IMAGENET_STD, extra_config: dict | None = None,
                      slug: str = "tango-model", reference_name: str = TRAINED_REFERENCE,
                      device_arch: str | None = None,
                      device_versions: dict | None = None) -> Path:
    """Write the bundle zip for this tier and return its path.

    model_files: names in the bundle -> files here; the first is the one runtime.py loads. reference: batch ->
    raw outputs of the reference model (`reference_name` says which, in the smoke test's and README's words), run on
    `samples` to record what smoke_test.py compares against.
    model_info: name, project, device (shown in the README). checks: sentences on how the artifact was verified
    and measured, for the README. device_arch, device_versions: for a runtime whose file only the device runs
    (RUNTIMES' device_packages), the architecture the file is built for and the versions that built it (the
    artifact's converter versions); off that architecture model_files must hold model.onnx, which runs there.
    """
    if tier not in Tier.ALL:
        raise ValueError(f"Unknown tier {tier!r}; known: {', '.join(Tier.ALL)}.")
    engine = RUNTIMES[runtime]
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    model_file = next(iter(model_files))
    host_model = None
    if engine.device_packages:
        device_arch = device_arch or "aarch64"
        if not runs_here(device_arch):
            if HOST_MODEL not in model_files:
                raise ValueError(f"A {engine.label} bundle for {device_arch} carries {HOST_MODEL} for the check "
                                 "off the device.")
            host_model = HOST_MODEL
        extra_config = {**(extra_config or {}), "device_arch": device_arch,
                        **({"host_model_file": host_model} if host_model else {})}
    elif engine.builds_on_device:  # where tensorrt does not import (this server), model.onnx runs on ONNX Runtime
        host_model = HOST_MODEL
        extra_config = {**(extra_config or {}), "host_model_file": host_model, "device_module": engine.key}
    config = _preprocess(task, input_size=input_size, runtime=engine, precision=precision, model_file=model_file,
                         model_name=model_info.get("name", ""), num_classes=len(class_names), gpu=target.gpu,
                         mean=mean, std=std, extra=extra_config or {})
    sample_names = [f"samples/{i + 1:02d}{Path(p).suffix.lower()}" for i, p in enumerate(samples[:SAMPLES])]
    expected = reference_results(task, reference, list(samples[:SAMPLES]), config=config, labels=class_names)
    for name, result in zip(sample_names, expected, strict=True):
        result["image"] = name
    tolerance = TOLERANCES[task].get(precision, TOLERANCES[task]["int8"])
    texts = {
        "labels.txt": "".join(f"{name}\n" for name in class_names),
        "preprocess.json": json.dumps(config, indent=2) + "\n",
        "infer.py": Path(bundle_infer.__file__ if task != "detection" else detect_infer.__file__).read_text(),
        "runtime.py": (FILES / f"runtime_{engine.key}.py").read_text(),
        "tango_common/__init__.py": Path(tango_common.__file__).read_text(),
        "tango_common/images.py": Path(images.__file__).read_text(),
        "tango_common/runtime_loader.py": Path(runtime_loader.__file__).read_text(),
        "smoke_test.py": (FILES / "smoke_test.py").read_text(),
        "samples/expected.json": json.dumps({"reference": reference_name, "tolerance": tolerance, "results": expected},
                                            indent=2) + "\n",
        "requirements.txt": tensorrt_requirements(target.cpu_arch) if engine.key == "tensorrt" else
        pinned_requirements(engine, gpu=target.gpu, device_versions=device_versions,
                            device_arch=device_arch if engine.device_packages else None),
    }
    if host_model:
        texts["runtime_host.py"] = (FILES / "runtime_onnxruntime.py").read_text()
    if tier in Tier.SERVED:
        texts["serve.py"] = (FILES / "serve.py").read_text()
        texts["healthcheck.py"] = (FILES / "healthcheck.py").read_text()
        texts["Dockerfile"] = dockerfile(engine, target)
    if tier == Tier.K8S:
        texts["k8s/deployment.yaml"] = k8s_deployment(slug, target)
        texts["k8s/service.yaml"] = k8s_service(slug)
    texts["README.md"] = render_readme(task=task, tier=tier, engine=engine, precision=precision, target=target,
                                       class_names=class_names, input_size=input_size, model_info=model_info,
                                       checks=list(checks), files=[*model_files, *texts, *sample_names],
                                       slug=slug, mean=mean, std=std, config=config, reference_name=reference_name)
    executable = {"infer.py", "serve.py", "smoke_test.py", "healthcheck.py"}
    sums = {}
    tmp = out_path.with_name(out_path.name + ".tmp")
    try:
        with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
            for name, source in model_files.items():
                sums[name] = _write_file(bundle, name, Path(source))
            for name, source in zip(sample_names, samples, strict=False):
                sums[name] = _write_file(bundle, name, Path(source))
            for name, text in texts.items():
                sums[name] = _write_bytes(bundle, name, text.encode("utf-8"), executable=name in executable)
            _write_bytes(bundle, "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sums.items()).encode("ascii"))
        tmp.replace(out_path)
    finally:
        tmp.unlink(missing_ok=True)
    return out_path


def _entry(name: str, *, executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16  # Unix permissions, so unzip keeps scripts runnable
    return info


def _write_bytes(bundle: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> str:
    bundle.writestr(_entry(name, executable=executable), data)
    return hashlib.sha256(data).hexdigest()


def _write_file(bundle: zipfile.ZipFile, name: str, source: Path) -> str:
    digest = hashlib.sha256()  # streamed: a VGG's model file is half a gigabyte
    with open(source, "rb") as src, bundle.open(_entry(name), "w", force_zip64=True) as dst:
        shutil.copyfileobj(_Hashing(src, digest), dst, 1 << 20)
    return digest.hexdigest()


class _Hashing:
    def __init__(self, stream, digest):
        self.stream, self.digest = stream, digest

    def read(self, size=-1):
        chunk = self.stream.read(size)
        self.digest.update(chunk)
        return chunk


# --- the container and the cluster --------------------------------------------------------------------------------

def dockerfile(engine: Runtime, target: Target) -> str:
    if engine.key == "tensorrt":
        base = "nvcr.io/nvidia/tensorrt:24.08-py3"  # ships tensorrt; requirements.txt pins neither it nor torch
        setup = ("# runtime.py's GPU buffers: torch with CUDA (PyPI's x86_64 wheel has it)\n"
                 f"RUN python -m pip install --no-cache-dir torch=={metadata.version('torch')}\n")
    elif target.gpu:
        base = "nvidia/cuda:12.4.1-cudnn-runtime-ubuntu22.04"
        setup = ("RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-pip \\\n"
                 "    && rm -rf /var/lib/apt/lists/* && ln -s /usr/bin/python3 /usr/local/bin/python\n")
    else:
        base = "python:3.11-slim"
        setup = ""
    # A CPU image runs the smoke test while it is built: an image that builds is an image that answers right.
    check = "" if (target.gpu or engine.builds_on_device) else "RUN python smoke_test.py\n"
    return (
        f"# The model behind a small HTTP server: docker build -t {engine.key}-model . && "
        f"docker run -p {PORT}:{PORT} {engine.key}-model\n"
        f"FROM {base}\n{setup}WORKDIR /bundle\nCOPY requirements.txt .\n"
        "RUN python -m pip install --no-cache-dir -r requirements.txt\n"
        f"COPY . .\n{check}ENV PORT={PORT}\nEXPOSE {PORT}\n"
        "HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 CMD [\"python\", \"healthcheck.py\"]\n"
        f"CMD [\"python\", \"serve.py\", \"--host\", \"0.0.0.0\", \"--port\", \"{PORT}\"]\n"
    )


def k8s_deployment(slug: str, target: Target) -> str:
    probe = {"httpGet": {"path": "/healthz", "port": "http"}, "periodSeconds": 10, "timeoutSeconds": 5}
    memory_mi = max(256, min(4096, (target.memory_mb or 2048) // 4))
    resources = {"requests": {"cpu": "500m", "memory": f"{memory_mi}Mi"}, "limits": {"memory": f"{memory_mi * 2}Mi"}}
    if target.gpu:
        resources["requests"]["nvidia.com/gpu"] = 1
        resources["limits"]["nvidia.com/gpu"] = 1
    container = {
        "name": "model", "image": f"registry.example.com/{slug}:latest",
        "ports": [{"name": "http", "containerPort": PORT}],
        "readinessProbe": {**probe, "initialDelaySeconds": 5},
        "livenessProbe": {**probe, "initialDelaySeconds": 30, "failureThreshold": 3},
        "resources": resources,
    }
    spec = {"containers": [container]}
    if target.gpu:
        spec["tolerations"] = [{"key": "nvidia.com/gpu", "operator": "Exists", "effect": "NoSchedule"}]
    manifest = {
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": slug, "labels": {"app": slug}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": slug}},
                 "template": {"metadata": {"labels": {"app": slug}}, "spec": spec}},
    }
    return ("# Build and push the image first (README.md), then set `image` below and run: "
            "kubectl apply -f k8s/\n" + yaml.safe_dump(manifest, sort_keys=False))


def k8s_service(slug: str) -> str:
    manifest = {
        "apiVersion": "v1", "kind": "Service", "metadata": {"name": slug, "labels": {"app": slug}},
        "spec": {"type": "ClusterIP", "selector": {"app": slug},
                 "ports": [{"name": "http", "port": 80, "targetPort": "http"}]},
    }
    return yaml.safe_dump(manifest, sort_keys=False)


# --- the README ---------------------------------------------------------------------------------------------------

TIER_WORDS = {Tier.ON_DEVICE: "on the device itself", Tier.PC: "on a PC", Tier.CLOUD: "on a cloud server",
              Tier.K8S: "on a Kubernetes cluster"}
FILE_WORDS = {
    "labels.txt": "the class names, one a line, in the model's output order",
    "preprocess.json": "how images are prepared for the model, and which engine and precision it runs with",
    "infer.py": "runs the model on image files and prints its answers",
    "runtime.py": "opens the model on its engine; the other scripts only go through it",
    "runtime_host.py": "opens model.onnx on ONNX Runtime off the device (tango_common/runtime_loader.py picks it)",
    "tango_common/__init__.py": "the preprocessing package infer.py imports (the portal's own code)",
    "tango_common/images.py": "image preprocessing, the same code the portal measured the model with",
    "tango_common/runtime_loader.py": "finds runtime.py and opens the model with it",
    "smoke_test.py": "checks the files and that the model answers like {reference} did",
    "samples/expected.json": "what {reference} answered for the sample images, and the tolerance",
    "requirements.txt": "the Python packages, pinned to the versions the portal checked the bundle with",
    "serve.py": "a small HTTP inference server (standard library only)",
    "healthcheck.py": "exits 0 when the server answers /healthz; the container's health check",
    "Dockerfile": "builds an image that serves the model",
    "k8s/deployment.yaml": "the Kubernetes Deployment: one replica, health probes, resource requests",
    "k8s/service.yaml": "the Kubernetes Service in front of it",
    "README.md": "this file",
}


def render_readme(*, task: str, tier: str, engine: Runtime, precision: str, target: Target, class_names: list[str],
                  input_size: int, model_info: dict, checks: list[str], files: list[str], slug: str, mean,
                  std, config: dict | None = None, reference_name: str = TRAINED_REFERENCE) -> str:
    what = "object detector" if task == "detection" else "image classifier"
    article = "An" if what[0] in "aeiou" else "A"  # it read "A image classifier"
    title = model_info.get("name") or what
    shown = ", ".join(class_names[:20]) + (f" and {len(class_names) - 20} more" if len(class_names) > 20 else "")
    project = f" of the project {model_info['project']}" if model_info.get("project") else ""
    accelerator = " with an NVIDIA GPU" if target.gpu else ""
    out = [f"# {title}\n",
           f"{article} {what}{project}, packaged by TANGO to run {TIER_WORDS[tier]}: {target.name} ({target.cpu_arch}"
           f"{accelerator}). It runs on {engine.label} in {precision}, takes {input_size}x{input_size} RGB images "
           f"and {'finds' if task == 'detection' else 'tells apart'} {len(class_names)} classes: {shown}.\n"]
    if engine.builds_on_device:
        # runtime.load_session builds through the kit's trt_build.py when the bundle has it (it calibrates int8 on
        # the project's images); the ahead-of-time command must be the same build, or README.txt and this disagree.
        ahead = (f"`python3 trt_build.py --precision {precision}`, which also prints its latency; see README.txt"
                 if "trt_build.py" in files else
                 "`python -c \"import runtime, json; runtime.build_engine('.', json.load(open('preprocess.json')))\"`")
        out.append(f"{engine.label} engines only run on the GPU and {engine.label} version that built them, so this "
                   "bundle carries the ONNX model and builds the engine on the device the first time it runs "
                   f"(or ahead of time with {ahead}). The engine file lands next to model.onnx.\n")
    config = config or {}
    host_model = config.get("host_model_file")
    if host_model == config.get("model_file"):  # a TensorRT kit: model.onnx is the model itself, on either side
        host_model = None
    if engine.device_packages:
        out.append(_where_it_runs(engine, config, target))
    if engine.key == "tensorrt":
        out.append(_tensorrt_where_it_runs(target))
    out.append("## What is in it\n\n" + "".join(
        f"- `{name}`: {_HOST_WORDS if name == host_model else _words(name, reference_name)}\n"
        for name in files) +
        "- `SHA256SUMS`: the checksum of every other file\n")
    if checks:
        out.append("## How it was checked\n\n" + "".join(f"- {line}\n" for line in checks))
    out.append("## Check it on the device\n\n```sh\npython -m venv .venv && . .venv/bin/activate\n"
               "pip install -r requirements.txt\npython smoke_test.py\n```\n\n"
               "The smoke test verifies the checksums, runs the model on the sample images and compares its answers "
               f"with those {reference_name} gave when the bundle was made; it prints one line per image and "
               "PASSED or FAILED, and exits 1 on a failure.\n")
    if task == "detection":
        out.append("## Run it\n\n```sh\npython infer.py photo.jpg --out results/\n"
                   "python infer.py images/ --out results/ --conf 0.4\n```\n\n"
                   "For each image, results/<name>.json lists its boxes (corners in the image's pixels, the label and "
                   "the score) and results/<name>.jpg shows them drawn.\n")
    else:
        out.append("## Run it\n\n```sh\npython infer.py photo.jpg\npython infer.py images/ --top-k 3 "
                   "--format json\n```\n\nEach image gets its most likely labels with their probabilities.\n")
    if tier in Tier.SERVED:
        out.append(f"## Serve it over HTTP\n\n```sh\npython serve.py --host 0.0.0.0 --port {PORT}\n"
                   f"curl -s localhost:{PORT}/healthz\n"
                   f"python healthcheck.py --port {PORT}    # exit 0 once /healthz answers 200\n"
                   f"curl -s --data-binary @photo.jpg localhost:{PORT}/predict\n"
                   f"python smoke_test.py --url http://localhost:{PORT}\n```\n\n"
                   "The server loads the model once, runs it once to warm up, and only then answers /healthz with 200. "
                   "POST one image as the request body to /predict and get JSON back"
                   + (" (add ?format=jpeg for the image with its boxes drawn)" if task == "detection" else
                      " (?top_k=5 for more labels)") + "; images over 16 MB and bodies that are not images are "
                   "refused with a clear message.\n\n"
                   f"With Docker:\n\n```sh\ndocker build -t {slug} .\ndocker run -p {PORT}:{PORT} "
                   f"{'--gpus all ' if target.gpu else ''}{slug}\n```\n\n"
                   "The image runs healthcheck.py as its health check"
                   + ("" if target.gpu or engine.builds_on_device else
                      ", and runs the smoke test while it is built") + ".\n")
    if tier == Tier.K8S:
        gpu = (" It asks for one NVIDIA GPU (`nvidia.com/gpu: 1`) and tolerates the GPU nodes' taint, so the cluster "
               "needs the NVIDIA device plugin." if target.gpu else "")
        out.append("## Deploy it on Kubernetes\n\n```sh\n"
                   f"docker build -t registry.example.com/{slug}:latest . && docker push "
                   f"registry.example.com/{slug}:latest\nkubectl apply -f k8s/\n"
                   f"kubectl port-forward service/{slug} {PORT}:80\n```\n\n"
                   "Put your registry in the image name (and in k8s/deployment.yaml). The Deployment runs one "
                   "replica; Kubernetes sends it traffic once /healthz answers and restarts it if /healthz stops "
                   f"answering.{gpu}\n")
    if task == "detection":
        prep = (f"Each image is converted to RGB, scaled to fit {input_size}x{input_size} with its aspect ratio kept "
                f"(bilinear), centred on grey ({PAD_VALUE}) padding and scaled to values between 0 and 1. The model "
                "gives, for every anchor, a box centre, width and height and one score per class; boxes over the "
                "score threshold go through per-class non-maximum suppression and are mapped back to the image.")
    else:
        prep = (f"Each image is converted to RGB, resized to {input_size}x{input_size} (bilinear), scaled to values "
                f"between 0 and 1, and normalised per channel with mean {_triple(mean)} and standard deviation "
                f"{_triple(std)}. The model gives one score per class; a softmax turns them into probabilities.")
    out.append(f"## Preprocessing\n\n{prep} infer.py does exactly this, with the same code the portal uses.\n")
    out.append("## Integrity\n\n```sh\nsha256sum -c SHA256SUMS\n```\n")
    return "\n".join(out)


_HOST_WORDS = ("the same network as ONNX, before the engine's conversion: what runs where the device's runtime cannot "
               "(the smoke test's check off the device)")


def _where_it_runs(engine: Runtime, config: dict, target: Target) -> str:
    """Which file runs where, for a bundle whose model file only the device runs."""
    device_file, host_model = config["model_file"], config.get("host_model_file")
    runtime = ", ".join(name for name, _ in engine.device_packages if name != "numpy")
    if engine.key == "rknn":
        how = (f"runs `{device_file}` on the board's NPU through {runtime}'s RKNNLite (load_rknn, init_runtime, "
               "inference, release)")
    else:
        how = f"loads `{device_file}`, the library TVM compiled for {config['device_arch']}, with {runtime}'s runtime"
    text = (f"## Where it runs\n\nOn {target.name} ({config['device_arch']}) `runtime.py` {how}; "
            f"`pip install -r requirements.txt` installs {runtime} there, at the version that built the file.")
    if host_model:
        text += (f" Anywhere else (a PC, the portal's server) that file cannot run, so `runtime_host.py` runs "
                 f"`{host_model}`, the same network before the conversion, on ONNX Runtime: `python smoke_test.py` "
                 "checks the bundle there too, and says which file it ran. On the device its answers are the "
                 f"{config['precision']} build's, held to the {config['precision']} tolerance in "
                 "samples/expected.json. TANGO_BUNDLE_MODEL=host or =device picks a side by hand.")
    return text + "\n"


def _tensorrt_where_it_runs(target: Target) -> str:
    """What a TensorRT kit needs from the device, and what runs where TensorRT is not."""
    return ("## Where it runs\n\n"
            f"On {target.name} `runtime.py` builds the TensorRT engine from model.onnx and runs it. What it imports "
            "for that comes with the device, not from PyPI (requirements.txt names them in comments and pins none):\n\n"
            + "".join(f"- `{module}`: {words}\n" for module, words in JETPACK.items())
            + "\nOn a Jetson make the venv with `python3 -m venv --system-site-packages .venv` so JetPack's tensorrt "
            "and torch import in it. Where tensorrt does not import (a PC without it, the portal's server) "
            "`runtime_host.py` runs model.onnx on ONNX Runtime instead, so `python smoke_test.py` checks the "
            "bundle there too and says which ran; the engine's own answers and latency are the device's.\n")


def _triple(values) -> str:
    return ", ".join(f"{v:g}" for v in values)


def _words(name: str, reference_name: str) -> str:
    words = FILE_WORDS.get(name)
    return words.format(reference=reference_name) if words else _file_words(name)


def _file_words(name: str) -> str:
    if name.startswith("samples/"):
        return "a sample image for the smoke test"
    if name.endswith(".onnx"):
        return "the model, as ONNX"
    if name.endswith(".xml"):
        return "the model, as OpenVINO IR (the network)"
    if name.endswith(".bin"):
        return "the model's weights (OpenVINO IR)"
    if name.endswith((".ts", ".pt")):
        return "the model, as TorchScript"
    if name.endswith(".tflite"):  # a TFLite bundle's only model file read "part of the model"
        return "the model, as TensorFlow Lite (LiteRT)"
    if name.endswith(".rknn"):
        return "the model built for the board's Rockchip NPU (RKNN); runtime.py runs it there"
    if name.endswith(".so"):
        return "the model, compiled by Apache TVM into a shared library for the device's CPU; runtime.py loads it"
    return _KIT_FILES.get(name, "part of the model")


# The TensorRT build kit's files (deployment/engine/converters/tensorrt.py), each read "part of the model"
_KIT_FILES = {
    "trt_build.py": "builds the TensorRT engine from model.onnx on the device and times it (p50/p90/p99)",
    "build_trtexec.sh": "the same build with NVIDIA's trtexec",
    "calibration.npz": "images of the project's training split, for TensorRT's int8 calibration",
    "kit.json": "the build kit's settings (input name and size, precision)",
    "README.txt": "how to build the engine with the kit",
}


# --- the check the package stage runs ------------------------------------------------------------------------------

def check_tier_bundle(zip_path: Path, *, tier: str, report=None, python: str | None = None,
                      timeout: float = 300) -> dict:
    """Unpack the bundle and use it as a team would: its smoke test (on the model, here), and for served tiers its
    server, health check and the smoke test against the server. Returns what ran and what it printed; "passed" is
    True only when everything that ran passed. A bundle whose model file only the device runs (RKNN, TVM for a
    board, a TensorRT kit where tensorrt does not import) runs its model.onnx here, on ONNX Runtime."""
    import subprocess
    import sys
    import tempfile

    say = report or (lambda *a, **k: None)
    python = python or sys.executable
    env = {"PATH": "/usr/bin:/bin", "HOME": tempfile.gettempdir(), "OMP_NUM_THREADS": "1"}
    result = {"tier": tier, "ran": [], "passed": True}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "bundle"
        with zipfile.ZipFile(zip_path) as archive:
            archive.extractall(folder)
            result["files"] = sorted(archive.namelist())

        def script(*args) -> subprocess.CompletedProcess:
            return subprocess.run([python, "-I", *map(str, args)], cwd=tmp, capture_output=True, text=True,
                                  timeout=timeout, env=env)

        done = script(folder / "smoke_test.py")
        result["ran"].append("smoke_test.py")
        result["smoke_test"] = done.stdout.strip().splitlines()[-12:] or done.stderr.strip().splitlines()[-5:]
        result["passed"] = done.returncode == 0
        say(f"Smoke test in the unpacked bundle: {(result['smoke_test'] or ['no output'])[-1]}")
        if tier in Tier.SERVED and result["passed"]:
            server = subprocess.Popen([python, "-I", str(folder / "serve.py"), "--port", "0"], cwd=tmp, env=env,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
            try:
                line = server.stdout.readline()
                if not line.startswith("Serving"):
                    result.update(passed=False, server=f"serve.py did not start: {server.stderr.read()[-500:]}")
                    return result
                url = line.split(" on ", 1)[1].split()[0]
                health = script(folder / "healthcheck.py", url)
                remote = script(folder / "smoke_test.py", "--url", url)
                result["ran"] += ["serve.py", "healthcheck.py", "smoke_test.py --url"]
                result["server"] = {"health": health.stdout.strip() or health.stderr.strip()[-300:],
                                    "smoke_test": remote.stdout.strip().splitlines()[-1:]}
                result["passed"] = health.returncode == 0 and remote.returncode == 0
                say(f"serve.py answered /healthz ({result['server']['health']}) and the smoke test through HTTP: "
                    f"{(result['server']['smoke_test'] or ['no output'])[-1]}")
            finally:
                server.terminate()
                server.wait(timeout=10)
                server.stdout.close()
                server.stderr.close()
    return result


def verify_checksums(folder: Path) -> list[str]:
    """Files in an unpacked bundle whose sha256 differs from SHA256SUMS (empty when all match)."""
    folder = Path(folder)
    bad = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split(maxsplit=1)
        name = name.lstrip("*")  # sha256sum marks binary-mode entries with '*'
        path = folder / name
        if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            bad.append(name)
    return bad
