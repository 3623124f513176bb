"""The downloadable bundle: an ONNX model with everything needed to run it, as one zip.

Contents: model.onnx, labels.txt, preprocess.json, infer.py (a copy of bundle_infer.py) with the preprocessing it
imports (tango_common/images.py, copied as is), requirements.txt, README.md and SHA256SUMS (`sha256sum -c
SHA256SUMS` checks the rest). The zip is reproducible: fixed timestamps and order, so the same inputs give the
same bytes.
"""

import hashlib
import json
import zipfile
from pathlib import Path

import tango_common
from tango_common import images
from tango_common.engines import ENGINES
from tango_common.images import IMAGENET_MEAN, IMAGENET_STD

INFER_SCRIPT = Path(__file__).with_name("bundle_infer.py")
# What infer.py imports besides numpy, Pillow and onnxruntime: copied under the same names, so it runs standalone.
INFER_MODULES = {"tango_common/__init__.py": Path(tango_common.__file__),
                 "tango_common/images.py": Path(images.__file__)}
ZIP_DATE = (1980, 1, 1, 0, 0, 0)  # the earliest date zip can store; real dates would make every build differ
REQUIREMENTS = "numpy>=1.24,<3\npillow>=9.1,<13\nonnxruntime>=1.16,<2\n"


def preprocess_config(input_size: int) -> dict:
    return {
        "input_size": input_size, "mean": list(IMAGENET_MEAN), "std": list(IMAGENET_STD),
        "resize": "bilinear", "color_mode": "RGB", "layout": "NCHW", "dtype": "float32", "scale": "1/255",
        "input_name": "images", "output_name": "logits", "output": "logits (apply softmax for probabilities)",
    }


def build_bundle(*, out_path: Path, onnx_path: Path, class_names: list[str], input_size: int, model_info: dict,
                 metrics: dict | None = None) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    texts = {
        "labels.txt": "".join(f"{name}\n" for name in class_names),
        "preprocess.json": json.dumps(preprocess_config(input_size), indent=2) + "\n",
        "infer.py": INFER_SCRIPT.read_text(encoding="utf-8"),
        **{name: source.read_text(encoding="utf-8") for name, source in INFER_MODULES.items()},
        "requirements.txt": REQUIREMENTS,
        "README.md": render_readme(class_names=class_names, input_size=input_size, model_info=model_info,
                                   metrics=metrics),
    }
    sums = {}
    tmp = out_path.with_name(out_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        sums["model.onnx"] = _write_file(bundle, "model.onnx", Path(onnx_path))
        for name, text in texts.items():
            sums[name] = _write_bytes(bundle, name, text.encode("utf-8"), executable=name == "infer.py")
        checksums = "".join(f"{digest}  {name}\n" for name, digest in sums.items())  # sha256sum's own format
        _write_bytes(bundle, "SHA256SUMS", checksums.encode("ascii"))
    tmp.replace(out_path)
    return out_path


def _entry(name: str, *, executable: bool = False) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(name, date_time=ZIP_DATE)
    info.compress_type = zipfile.ZIP_DEFLATED
    info.external_attr = (0o755 if executable else 0o644) << 16  # Unix permissions, so unzip keeps infer.py runnable
    return info


def _write_bytes(bundle: zipfile.ZipFile, name: str, data: bytes, *, executable: bool = False) -> str:
    bundle.writestr(_entry(name, executable=executable), data)
    return hashlib.sha256(data).hexdigest()


def _write_file(bundle: zipfile.ZipFile, name: str, source: Path) -> str:
    # Streamed: a VGG's ONNX file is half a gigabyte.
    digest = hashlib.sha256()
    with open(source, "rb") as src, bundle.open(_entry(name), "w", force_zip64=True) as dst:
        for chunk in iter(lambda: src.read(1 << 20), b""):
            digest.update(chunk)
            dst.write(chunk)
    return digest.hexdigest()


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


# Labels for the model_info and metrics keys the package stage passes; any other key is shown with its own name.
FIELD_LABELS = {"name": "Model", "model": "Model", "project": "Project", "task": "Task", "device": "Target device",
                "engine": "Engine", "precision": "Precision", "params": "Parameters", "flops": "FLOPs per image",
                "val_top1": "Validation top-1", "input_size": "Input size"}
BENCHMARK_LABELS = {"latency_p50_ms": "Latency, median", "latency_p95_ms": "Latency, 95th percentile",
                    "latency_mean_ms": "Latency, mean", "top1": "Top-1 on the validation images",
                    "n_images": "Images measured", "runs": "Timed runs", "host": "Measured on"}


def render_readme(*, class_names: list[str], input_size: int, model_info: dict, metrics: dict | None) -> str:
    title = model_info.get("name") or model_info.get("model") or "image classifier"
    info_rows = "".join(f"| {_label(key)} | {_format_field(key, value)} |\n" for key, value in model_info.items()
                        if value not in (None, ""))
    metrics = dict(metrics or {})
    benchmark = metrics.pop("benchmark", None)
    metric_rows = "".join(f"| {_label(key)} | {_format_field(key, value)} |\n" for key, value in metrics.items()
                          if value is not None)
    labels = ", ".join(class_names[:20]) + (f", … ({len(class_names)} in all)" if len(class_names) > 20 else "")
    shown = zip(class_names, (0.912, 0.061, 0.017), strict=False)
    example = "photo.jpg: " + ", ".join(f"{name} {p:.3f}" for name, p in shown)
    sections = [
        f"# {title}\n",
        f"An image classifier exported by TANGO as ONNX. It takes {input_size}x{input_size} RGB images "
        f"and predicts one of {len(class_names)} classes: {labels}.\n",
        "## Model\n\n| | |\n|---|---|\n" + info_rows,
    ]
    if metric_rows:
        sections.append("## Validation metrics\n\n| metric | value |\n|---|---|\n" + metric_rows)
    if isinstance(benchmark, dict) and benchmark:
        rows = "".join(f"| {BENCHMARK_LABELS.get(key, _label(key))} | {_format_benchmark(key, value)} |\n"
                       for key, value in benchmark.items() if value not in (None, "", {}, []))
        sections.append("## Benchmark (ONNX Runtime, batch 1, on the TANGO server, not the device)\n\n"
                        "| measure | value |\n|---|---|\n" + rows)
    sections.append(
        "## Run it\n\n```sh\npython -m venv .venv && . .venv/bin/activate\npip install -r requirements.txt\n"
        "python infer.py photo.jpg                  # one image\n"
        "python infer.py images/ --top-k 3 --format json   # every image in a folder\n```\n\n"
        f"Text output looks like this (the numbers here are illustrative):\n\n```\n{example}\n```\n\n"
        "`--format json` prints a list of `{\"image\": ..., \"top\": [{\"label\", \"index\", \"probability\"}]}`.\n"
    )
    sections.append(
        "## Preprocessing\n\n`preprocess.json` says it all: convert to RGB, resize to "
        f"{input_size}x{input_size} (bilinear), scale to [0, 1], subtract `mean` and divide by `std` per channel, "
        "NCHW float32. The input is named `images`, the output `logits` (softmax gives probabilities). "
        "`infer.py` implements exactly this and is importable (`preprocess_image`, `predict`).\n"
    )
    sections.append("## Integrity\n\n```sh\nsha256sum -c SHA256SUMS\n```\n")
    return "\n".join(sections)


def _label(key: str) -> str:
    return FIELD_LABELS.get(key) or str(key).replace("_", " ").capitalize()


def _si(number: float) -> str:
    for factor, suffix in ((1e12, " T"), (1e9, " G"), (1e6, " M"), (1e3, " k")):
        if abs(number) >= factor:
            return f"{number / factor:.1f}{suffix}"
    return f"{number:g}"


def _in_words(value) -> str:
    """Nested values as plain text (never a Python dict's repr): "a: 1, b: 2"."""
    if isinstance(value, dict):
        return ", ".join(f"{k}: {_in_words(v)}" for k, v in value.items() if v not in (None, ""))
    if isinstance(value, list | tuple):
        return ", ".join(_in_words(v) for v in value)
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _format_field(key: str, value) -> str:
    if key == "engine" and value in ENGINES:
        return ENGINES[value].label
    if key in ("params", "flops") and isinstance(value, int | float):
        return _si(value)
    if key.endswith("top1") and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if key == "task" and isinstance(value, str):
        return {"classification": "Image classification", "detection": "Object detection"}.get(value, value)
    return _in_words(value)


def _format_benchmark(key: str, value) -> str:
    if key.endswith("_ms") and isinstance(value, int | float):
        return f"{value:.2f} ms"
    if key == "top1" and isinstance(value, float):
        return f"{100 * value:.1f}%"
    if key == "host" and isinstance(value, dict):
        name = value.get("name") or value.get("device") or value.get("hostname")
        cpu = value.get("cpu") or value.get("cpu_name")
        return ", ".join(str(v) for v in (name, cpu) if v) or _in_words(value)
    return _in_words(value)
