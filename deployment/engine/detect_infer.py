#!/usr/bin/env python3
"""Run the TANGO object detector in this folder: `python infer.py IMAGE_OR_FOLDER [...] --out results/`.

Self-contained on purpose (numpy, Pillow, the engine's runtime and the standard library only): this file is copied
into every exported detection bundle as `infer.py` (with tango_common/runtime_loader.py, which opens the model on the
bundle's engine through its runtime.py), and the portal imports its letterbox, decode and NMS for the ONNX
parity check, so the boxes the portal reports and the boxes the bundle writes come from the same code.

For each image it writes `<name>.json` (boxes in the image's own pixels: x0, y0, x1, y1, score, class) and
`<name>.jpg` with the boxes drawn, and prints one JSON list of all results.
"""

import argparse
import json
import sys
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

if not __package__:  # run as a script from a bundle folder: its tango_common/ sits next to this file, and
    sys.path.insert(0, str(Path(__file__).resolve().parent))  # python -I leaves the folder off sys.path

from tango_common.runtime_loader import open_session

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff"}
PAD_VALUE = 114  # the grey ultralytics pads with; the model was trained on it
HERE = Path(__file__).resolve().parent
COLOURS = ((230, 25, 75), (60, 180, 75), (0, 130, 200), (245, 130, 48), (145, 30, 180), (70, 240, 240),
           (240, 50, 230), (210, 245, 60), (250, 190, 212), (0, 128, 128))


def open_rgb(image) -> Image.Image:
    if isinstance(image, Image.Image):
        return image.convert("RGB")
    with Image.open(image) as opened:
        return opened.convert("RGB")  # convert() loads the pixels, so the file can close


def letterbox(image, input_size: int) -> tuple[np.ndarray, dict]:
    """RGB image -> (3, S, S) float32 in [0, 1]: scaled to fit (aspect kept, bilinear), centred on grey padding.
    Returns the array and the transform (scale, pad_x, pad_y) that maps boxes back to the image."""
    image = open_rgb(image)
    w, h = image.size
    scale = min(input_size / w, input_size / h)
    new_w, new_h = max(1, round(w * scale)), max(1, round(h * scale))
    if (new_w, new_h) != (w, h):
        image = image.resize((new_w, new_h), Image.Resampling.BILINEAR)
    pad_x, pad_y = (input_size - new_w) // 2, (input_size - new_h) // 2
    canvas = Image.new("RGB", (input_size, input_size), (PAD_VALUE,) * 3)
    canvas.paste(image, (pad_x, pad_y))
    array = np.asarray(canvas, dtype=np.float32).transpose(2, 0, 1) / 255.0
    return np.ascontiguousarray(array), {"scale": scale, "pad_x": pad_x, "pad_y": pad_y, "width": w, "height": h}


def box_iou(box: np.ndarray, boxes: np.ndarray) -> np.ndarray:
    """IoU of one x0y0x1y1 box with each of `boxes`."""
    x0, y0 = np.maximum(box[0], boxes[:, 0]), np.maximum(box[1], boxes[:, 1])
    x1, y1 = np.minimum(box[2], boxes[:, 2]), np.minimum(box[3], boxes[:, 3])
    inter = np.clip(x1 - x0, 0, None) * np.clip(y1 - y0, 0, None)
    area = (box[2] - box[0]) * (box[3] - box[1])
    areas = (boxes[:, 2] - boxes[:, 0]) * (boxes[:, 3] - boxes[:, 1])
    return inter / np.maximum(area + areas - inter, 1e-9)


def nms(boxes: np.ndarray, scores: np.ndarray, iou: float) -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best first."""
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, order = order[0], order[1:]
        keep.append(best)
        if order.size:
            order = order[box_iou(boxes[best], boxes[order]) <= iou]
    return np.asarray(keep, dtype=np.int64)


def decode(output: np.ndarray, *, conf: float = 0.25, iou: float = 0.7, max_det: int = 300,
           max_candidates: int = 3000) -> np.ndarray:
    """One image's raw output (4 + classes, anchors: cx, cy, w, h in input pixels, then class scores) ->
    detections (n, 6): x0, y0, x1, y1, score, class, in input pixels. NMS is per class."""
    scores_all = output[4:].T
    classes = scores_all.argmax(1)
    scores = scores_all[np.arange(len(classes)), classes]
    mask = scores > conf
    if not mask.any():
        return np.zeros((0, 6), dtype=np.float32)
    cx, cy, w, h = output[:4, mask]
    boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
    scores, classes = scores[mask], classes[mask]
    if len(scores) > max_candidates:
        top = np.argsort(-scores, kind="stable")[:max_candidates]
        boxes, scores, classes = boxes[top], scores[top], classes[top]
    offset = classes[:, None].astype(np.float32) * (boxes.max() + 1)  # boxes of different classes never overlap
    keep = nms(boxes + offset, scores, iou)[:max_det]
    return np.concatenate([boxes[keep], scores[keep, None], classes[keep, None]], axis=1).astype(np.float32)


def to_image_pixels(detections: np.ndarray, transform: dict) -> np.ndarray:
    """Undo the letterbox: input pixels -> the original image's pixels, clipped to it."""
    out = detections.copy()
    out[:, [0, 2]] = ((out[:, [0, 2]] - transform["pad_x"]) / transform["scale"]).clip(0, transform["width"])
    out[:, [1, 3]] = ((out[:, [1, 3]] - transform["pad_y"]) / transform["scale"]).clip(0, transform["height"])
    return out


def load_bundle(bundle_dir=HERE):
    """The model's session on the bundle's engine (its runtime.py), preprocess settings and labels of a folder."""
    bundle_dir = Path(bundle_dir)
    config = json.loads((bundle_dir / "preprocess.json").read_text())
    labels = (bundle_dir / "labels.txt").read_text(encoding="utf-8").splitlines()
    return open_session(bundle_dir, config), config, labels


def detect(session, paths, *, input_size: int, labels, conf: float = 0.25, iou: float = 0.7,
           max_det: int = 300) -> list[dict]:
    """Boxes for each image, in the order given."""
    input_name = session.get_inputs()[0].name
    results = []
    for path in paths:
        array, transform = letterbox(path, input_size)
        output = session.run(None, {input_name: array[None]})[0][0]
        dets = to_image_pixels(decode(output, conf=conf, iou=iou, max_det=max_det), transform)
        boxes = [{"label": labels[int(d[5])], "class": int(d[5]), "score": round(float(d[4]), 5),
                  "box": [round(float(v), 2) for v in d[:4]]} for d in dets]
        results.append({"image": str(path), "width": transform["width"], "height": transform["height"],
                        "boxes": boxes})
    return results


def draw(image_path, result: dict) -> Image.Image:
    image = open_rgb(image_path)
    pen = ImageDraw.Draw(image)
    width = max(1, round(max(image.size) / 300))
    for box in result["boxes"]:
        colour = COLOURS[box["class"] % len(COLOURS)]
        pen.rectangle(box["box"], outline=colour, width=width)
        text = f"{box['label']} {box['score']:.2f}"
        x, y = box["box"][0], max(0, box["box"][1] - 11)
        pen.rectangle(pen.textbbox((x, y), text), fill=colour)
        pen.text((x, y), text, fill=(255, 255, 255))
    return image


def write_outputs(results: list[dict], out_dir: Path) -> None:
    """<stem>.json and an annotated <stem>.jpg per image (a numeric suffix keeps equal stems apart)."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    used = set()
    for result in results:
        stem, n = Path(result["image"]).stem, 1
        name = stem
        while name in used:
            name, n = f"{stem}-{n}", n + 1
        used.add(name)
        (out_dir / f"{name}.json").write_text(json.dumps(result, indent=2) + "\n")
        draw(result["image"], result).save(out_dir / f"{name}.jpg", quality=90)


def expand_paths(arguments) -> list[Path]:
    """Files as given; folders become their image files (sorted, not recursive)."""
    paths = []
    for argument in map(Path, arguments):
        if argument.is_dir():
            paths.extend(sorted(p for p in argument.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES))
        elif argument.is_file():
            paths.append(argument)
        else:
            raise SystemExit(f"infer.py: no such file or folder: {argument}")
    return paths


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Detect objects in images with the model in this bundle.")
    parser.add_argument("images", nargs="+", help="image files or folders of images")
    parser.add_argument("--out", default="results", help="folder for the .json and annotated .jpg of each image")
    parser.add_argument("--conf", type=float, default=None, help="minimum score (default: preprocess.json's)")
    parser.add_argument("--iou", type=float, default=None, help="NMS IoU threshold (default: preprocess.json's)")
    parser.add_argument("--bundle-dir", default=str(HERE), help="the bundle folder (default: where infer.py is)")
    args = parser.parse_args(argv)

    paths = expand_paths(args.images)
    if not paths:
        print("infer.py: no images found", file=sys.stderr)
        return 1
    session, config, labels = load_bundle(args.bundle_dir)
    conf = config.get("conf", 0.25) if args.conf is None else args.conf
    iou = config.get("iou", 0.7) if args.iou is None else args.iou
    try:
        results = detect(session, paths, input_size=config["input_size"], labels=labels, conf=conf, iou=iou,
                         max_det=config.get("max_det", 300))
    except OSError as error:  # Pillow's UnidentifiedImageError: a file that is not an image (it names the file)
        print(f"infer.py: {error}: not an image Pillow can read", file=sys.stderr)
        return 1
    write_outputs(results, Path(args.out))
    print(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
