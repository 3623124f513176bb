"""The downloadable bundle of a detector: model.onnx with its own letterbox, decode and NMS, as one zip.

Contents: model.onnx, labels.txt, preprocess.json, infer.py (a copy of detect_infer.py), requirements.txt,
README.md and SHA256SUMS; reproducible bytes, as for the classification bundle (bundle.py).
"""

import json
import zipfile
from pathlib import Path

from .bundle import REQUIREMENTS, _write_bytes, _write_file
from .detect_infer import PAD_VALUE
from .detect_onnx import DEFAULT_CONF, DEFAULT_IOU, INPUT_NAME, OUTPUT_NAME

INFER_SCRIPT = Path(__file__).with_name("detect_infer.py")


def detection_preprocess_config(input_size: int, num_classes: int) -> dict:
    return {
        "task": "detection", "input_size": input_size, "resize": "letterbox (aspect kept, bilinear, centred)",
        "pad_value": PAD_VALUE, "color_mode": "RGB", "layout": "NCHW", "dtype": "float32", "scale": "1/255",
        "input_name": INPUT_NAME, "output_name": OUTPUT_NAME,
        "output": f"(N, 4 + {num_classes}, anchors): cx, cy, w, h in input pixels, then class scores (sigmoid)",
        "conf": DEFAULT_CONF, "iou": DEFAULT_IOU, "max_det": 300,
    }


def build_detection_bundle(*, out_path: Path, onnx_path: Path, class_names: list[str], input_size: int,
                           model_info: dict, metrics: dict | None = None) -> Path:
    out_path = Path(out_path)
    out_path.parent.mkdir(parents=True, exist_ok=True)
    texts = {
        "labels.txt": "".join(f"{name}\n" for name in class_names),
        "preprocess.json": json.dumps(detection_preprocess_config(input_size, len(class_names)), indent=2) + "\n",
        "infer.py": INFER_SCRIPT.read_text(encoding="utf-8"),
        "requirements.txt": REQUIREMENTS,
        "README.md": render_detection_readme(class_names=class_names, input_size=input_size,
                                             model_info=model_info, metrics=metrics),
    }
    sums = {}
    tmp = out_path.with_name(out_path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as bundle:
        sums["model.onnx"] = _write_file(bundle, "model.onnx", Path(onnx_path))
        for name, text in texts.items():
            sums[name] = _write_bytes(bundle, name, text.encode("utf-8"), executable=name == "infer.py")
        _write_bytes(bundle, "SHA256SUMS", "".join(f"{d}  {n}\n" for n, d in sums.items()).encode("ascii"))
    tmp.replace(out_path)
    return out_path


def render_detection_readme(*, class_names: list[str], input_size: int, model_info: dict,
                            metrics: dict | None) -> str:
    title = model_info.get("name") or model_info.get("model") or "object detector"
    info_rows = "".join(f"| {key} | {value} |\n" for key, value in model_info.items())
    metric_rows = "".join(f"| {k} | {v:.4f} |\n" if isinstance(v, float) else f"| {k} | {v} |\n"
                          for k, v in (metrics or {}).items() if v is not None)
    labels = ", ".join(class_names[:20]) + (f", … ({len(class_names)} in all)" if len(class_names) > 20 else "")
    sections = [
        f"# {title}\n",
        f"An object detector exported by TANGO as ONNX. It takes {input_size}x{input_size} RGB images and finds "
        f"{len(class_names)} classes: {labels}.\n",
        "## Model\n\n| field | value |\n|---|---|\n" + info_rows,
    ]
    if metric_rows:
        sections.append("## Validation metrics\n\n| metric | value |\n|---|---|\n" + metric_rows)
    sections += [
        "## Run it\n\n```sh\npython -m venv .venv && . .venv/bin/activate\npip install -r requirements.txt\n"
        "python infer.py photo.jpg --out results/        # one image\n"
        "python infer.py images/ --out results/ --conf 0.4   # a folder, stricter threshold\n```\n\n"
        "For each image, `results/<name>.json` holds its boxes (`box` is x0, y0, x1, y1 in the image's pixels, "
        "with `label`, `class` and `score`) and `results/<name>.jpg` shows them drawn; all results are also "
        "printed as one JSON list.\n",
        "## Preprocessing and decoding\n\n`preprocess.json` says it all: RGB, scaled to fit "
        f"{input_size}x{input_size} with the aspect ratio kept (bilinear), centred on grey ({PAD_VALUE}) padding, "
        "values in [0, 1], NCHW float32. The output holds, per anchor, the box centre, width and height in input "
        "pixels and one score per class; keep scores above `conf`, run non-maximum suppression per class at "
        "`iou`, and undo the letterbox. `infer.py` does exactly this with numpy (`letterbox`, `decode`, "
        "`to_image_pixels`, `detect`).\n",
        "## Integrity\n\n```sh\nsha256sum -c SHA256SUMS\n```\n",
    ]
    return "\n".join(sections)
