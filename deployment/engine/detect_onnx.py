"""Detection models: ONNX export and the check that ONNX Runtime finds the same boxes as PyTorch.

A trained detector is an ultralytics checkpoint built only from ultralytics' own layers (the zoo's YAMLs see to
that), so ultralytics alone loads it here — through its allow-listed loader, never by running pickled code.
The exported graph has one input "images" (N, 3, S, S; RGB in [0, 1], letterboxed) and one output "output0"
(N, 4 + classes, anchors): boxes as centre x, centre y, width, height in input pixels, then class scores. The
legacy TorchScript exporter (dynamo=False) writes one file at opset 17 by default; 19 at most, which is what the
RKNN toolchain takes.
"""

import copy
import warnings
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import torch

from .detect_infer import box_iou, decode, letterbox, to_image_pixels

INPUT_NAME, OUTPUT_NAME = "images", "output0"
MAX_OPSET = 19
MAP_CONF = 0.001  # the score floor for mAP (as ultralytics validates); agreement is judged at DEFAULT_CONF
DEFAULT_CONF, DEFAULT_IOU = 0.25, 0.7
MATCH_IOU = 0.95  # a PyTorch box and an ONNX Runtime box are "the same" above this IoU and class
SCORE_TOLERANCE = 1e-3  # the largest score difference parity allows; also the band around conf read as a tie


def load_detector(weights_path: Path) -> torch.nn.Module:
    """The checkpoint's model (its EMA when present) in float32, Conv+BN fused, eval mode, on CPU."""
    from ultralytics.nn.tasks import torch_safe_load

    ckpt = torch_safe_load(str(weights_path), safe_only=True)[0]
    model = (ckpt.get("ema") or ckpt["model"]).float().cpu()
    model = model.fuse(verbose=False) if hasattr(model, "fuse") else model
    return model.eval()


def class_names(model: torch.nn.Module) -> list[str]:
    names = model.names
    return [names[i] for i in sorted(names)] if isinstance(names, dict) else list(names)


def _export_copy(model: torch.nn.Module) -> torch.nn.Module:
    """A copy whose Detect head returns the decoded tensor alone, as in ultralytics' own ONNX export."""
    model = copy.deepcopy(model).cpu().eval()
    for module in model.modules():
        if hasattr(module, "export") and hasattr(module, "format") and hasattr(module, "stride"):
            module.export, module.format, module.dynamic = True, "onnx", False
    return model


def export_detector_onnx(model: torch.nn.Module, *, input_size: int, path: Path, opset: int = 17) -> Path:
    if opset > MAX_OPSET:
        raise ValueError(f"opset {opset} is above {MAX_OPSET}, the newest the RKNN toolchain reads")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    example = torch.zeros(1, 3, input_size, input_size)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # TorchScript exporter deprecation and tracer warnings about shapes
        torch.onnx.export(
            _export_copy(model), (example,), str(path), dynamo=False, opset_version=opset,
            input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
            dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, do_constant_folding=True,
        )
    onnx.checker.check_model(str(path))
    return path


def read_yolo_labels(label_path: Path | None, width: int, height: int) -> np.ndarray:
    """(n, 5) class, x0, y0, x1, y1 in image pixels from a YOLO label file (missing file: no boxes)."""
    rows = []
    if label_path is not None and Path(label_path).exists():
        for line in Path(label_path).read_text().splitlines():
            if line.strip():
                c, cx, cy, w, h = (float(v) for v in line.split())
                rows.append([c, (cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width,
                             (cy + h / 2) * height])
    return np.asarray(rows, dtype=np.float64).reshape(-1, 5)


def map50(detections: list[np.ndarray], truths: list[np.ndarray], num_classes: int) -> float:
    """mAP at IoU 0.5 over the classes that have ground truth, 101-point interpolated (COCO's and ultralytics'
    way). detections: per image (n, 6) x0, y0, x1, y1, score, class; truths: per image (m, 5) class, box."""
    return map_at(detections, truths, num_classes, 0.5)


def map50_95(detections: list[np.ndarray], truths: list[np.ndarray], num_classes: int) -> float:
    """COCO's mAP: the mean of mAP at IoU 0.50, 0.55, … 0.95."""
    return float(np.mean([map_at(detections, truths, num_classes, t) for t in np.linspace(0.5, 0.95, 10)]))


def map_at(detections: list[np.ndarray], truths: list[np.ndarray], num_classes: int, iou_threshold: float) -> float:
    """mAP with a detection counted as a hit above iou_threshold (greedy, best score first, one hit per box)."""
    aps = []
    for cls in range(num_classes):
        n_true = sum(int((t[:, 0] == cls).sum()) for t in truths)
        if n_true == 0:
            continue
        scores, hits = [], []
        for dets, true in zip(detections, truths, strict=True):
            gt = true[true[:, 0] == cls, 1:]
            used = np.zeros(len(gt), dtype=bool)
            mine = dets[dets[:, 5] == cls]
            for det in mine[np.argsort(-mine[:, 4], kind="stable")]:
                scores.append(det[4])
                ious = box_iou(det[:4], gt) if len(gt) else np.zeros(0)
                ious[used] = 0
                best = int(ious.argmax()) if len(ious) else -1
                hit = best >= 0 and ious[best] >= iou_threshold
                if hit:
                    used[best] = True
                hits.append(hit)
        aps.append(_average_precision(np.asarray(scores), np.asarray(hits, dtype=bool), n_true))
    return float(np.mean(aps)) if aps else 0.0


def _average_precision(scores: np.ndarray, hits: np.ndarray, n_true: int) -> float:
    if not len(scores):
        return 0.0
    order = np.argsort(-scores, kind="stable")
    tp = np.cumsum(hits[order])
    recall = tp / n_true
    precision = tp / np.arange(1, len(tp) + 1)
    mrec = np.concatenate([[0.0], recall, [1.0]])
    mpre = np.flip(np.maximum.accumulate(np.flip(np.concatenate([[1.0], precision, [0.0]]))))
    grid = np.linspace(0, 1, 101)
    return float(np.trapezoid(np.interp(grid, mrec, mpre), grid))


def _agreement(reference: np.ndarray, candidate: np.ndarray, *, conf: float = 0.0, band: float = 0.0,
               nms_iou: float | None = None) -> tuple[int, int, float]:
    """(matched, compared, largest score difference) between two detection sets of one image, over the boxes that
    score above conf. Two kinds of tie are not disagreements (band: the score difference rounding can make):
    a box one runtime scores just above conf and the other just below it is matched across the threshold; and with
    nms_iou, where NMS chose between two boxes overlapping by more than nms_iou whose scores tie within band, each
    runtime may have kept the other one of the two: those are paired as the same answer."""
    reference, candidate = reference[reference[:, 4] > conf - band], candidate[candidate[:, 4] > conf - band]
    same_box = _pairs(reference, candidate, MATCH_IOU, band=None, taken=([], []))
    ties = _pairs(reference, candidate, nms_iou, band=band, taken=same_box) if nms_iou is not None else ([], [])
    scores = [(reference[r, 4], candidate[c, 4]) for r, c in zip(*same_box, strict=True)]
    scores += [(reference[r, 4], candidate[c, 4]) for r, c in zip(*ties, strict=True)]
    counted = [pair for pair in scores if max(pair) > conf]  # a pair both below conf is not compared at all
    worst = max((abs(float(a - b)) for a, b in scores[:len(same_box[0])] if max(a, b) > conf), default=0.0)
    return len(counted), int(max((reference[:, 4] > conf).sum(), (candidate[:, 4] > conf).sum())), worst


def _pairs(reference: np.ndarray, candidate: np.ndarray, min_iou: float, *, band: float | None,
           taken: tuple[list[int], list[int]]) -> tuple[list[int], list[int]]:
    """Greedy one-to-one pairs (reference index, candidate index) of boxes of one class overlapping by min_iou or
    more, among those not taken yet; with band, only boxes whose scores are within band of each other."""
    used = np.zeros(len(candidate), dtype=bool)
    used[list(taken[1])] = True
    refs, cands = [], []
    for index, det in enumerate(reference):
        if index in taken[0]:
            continue
        same = (candidate[:, 5] == det[5]) & ~used
        if band is not None:
            same &= np.abs(candidate[:, 4] - det[4]) <= band
        if not same.any():
            continue
        ious = np.where(same, box_iou(det[:4], candidate[:, :4]), 0)
        best = int(ious.argmax())
        if ious[best] >= min_iou:
            used[best] = True
            refs.append(index)
            cands.append(best)
    return refs, cands


def check_detection_parity(model: torch.nn.Module, onnx_path: Path, samples: list[tuple[Path, Path | None]], *,
                           input_size: int, report: Callable[..., None] | None = None,
                           conf: float = DEFAULT_CONF, iou: float = DEFAULT_IOU) -> dict:
    """Run the same letterboxed validation images through PyTorch and ONNX Runtime (both CPU); compare the raw
    outputs, the boxes after NMS (class, IoU >= 0.95, score) and the mAP50 each reaches against the labels."""
    import onnxruntime as ort

    if not samples:
        raise ValueError("check_detection_parity needs at least one image")
    reference = _export_copy(model)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    nc = len(class_names(model))
    outs = {"torch": [], "onnx": []}
    truths, matched, compared, worst_score, worst_raw = [], 0, 0, 0.0, 0.0
    for image_path, label_path in samples:
        array, transform = letterbox(image_path, input_size)
        with torch.no_grad():
            expected = reference(torch.from_numpy(array[None])).numpy()[0]
        actual = session.run([OUTPUT_NAME], {INPUT_NAME: array[None]})[0][0]
        worst_raw = max(worst_raw, float(np.abs(expected - actual).max()))
        truths.append(read_yolo_labels(label_path, transform["width"], transform["height"]))
        for key, raw in (("torch", expected), ("onnx", actual)):
            outs[key].append(to_image_pixels(decode(raw, conf=MAP_CONF, iou=iou), transform))
        m, c, s = _agreement(outs["torch"][-1], outs["onnx"][-1], conf=conf, band=SCORE_TOLERANCE, nms_iou=iou)
        matched, compared, worst_score = matched + m, compared + c, max(worst_score, s)
    result = {
        "n_images": len(samples), "boxes_compared": compared, "boxes_matched": matched,
        "box_agreement": matched / compared if compared else 1.0, "max_score_diff": worst_score,
        "max_abs_diff": worst_raw, "map50_torch": map50(outs["torch"], truths, nc),
        "map50_onnx": map50(outs["onnx"], truths, nc), "conf": conf, "iou": iou,
    }
    if report is not None:
        report(f"detection parity on {result['n_images']} images: {matched}/{compared} boxes agree "
               f"(max score diff {worst_score:.1e}, max output diff {worst_raw:.1e}); mAP50 PyTorch "
               f"{result['map50_torch']:.4f}, ONNX Runtime {result['map50_onnx']:.4f}")
    return result


def detection_parity_ok(result: dict, *, min_agreement: float = 0.99, map_tolerance: float = 0.005,
                        score_tolerance: float = SCORE_TOLERANCE) -> bool:
    return (result["box_agreement"] >= min_agreement and result["max_score_diff"] <= score_tolerance
            and abs(result["map50_torch"] - result["map50_onnx"]) <= map_tolerance)
