"""Detection deployment: ONNX export checked against PyTorch, and the standalone bundle's infer.py."""

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest

from deployment.engine import detect_infer
from deployment.engine.bundle import Target, build_tier_bundle, verify_checksums
from deployment.engine.detect_onnx import (
    _agreement,
    check_detection_parity,
    class_names,
    decode,
    detection_parity_ok,
    export_detector_onnx,
    letterbox,
    load_detector,
    map50,
    to_image_pixels,
)
from training.tests.detection_support import INPUT_SIZE, trained_detector


@pytest.fixture(scope="module")
def detector(tmp_path_factory):
    shared = trained_detector(tmp_path_factory.getbasetemp())
    data_dir = Path(shared["data_dir"])
    samples = [(p, data_dir / "labels" / "val" / f"{p.stem}.txt")
               for p in sorted((data_dir / "images" / "val").glob("*.jpg"))]
    model = load_detector(Path(shared["result"]["weights_path"]))
    return model, samples


@pytest.fixture(scope="module")
def exported(detector, tmp_path_factory):
    model, _ = detector
    return export_detector_onnx(model, input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("onnx") / "model.onnx")


def test_export_is_one_file_at_an_opset_rknn_reads(exported):
    graph = onnx.load(str(exported))
    assert max(o.version for o in graph.opset_import if o.domain in ("", "ai.onnx")) == 17
    assert not list(exported.parent.glob("*.data"))  # no side file of weights
    with pytest.raises(ValueError, match="RKNN"):
        export_detector_onnx(None, input_size=INPUT_SIZE, path=exported.with_name("x.onnx"), opset=20)


def test_onnx_runtime_finds_the_same_boxes_and_map50_as_pytorch(detector, exported):
    model, samples = detector
    lines = []
    # A low threshold, so that even a barely trained detector (3 epochs; its scores vary from run to run) has boxes
    # to compare; parity is the portal's own rule (detection_parity_ok), not more.
    result = check_detection_parity(model, exported, samples, input_size=INPUT_SIZE, conf=0.002,
                                    report=lines.append)
    assert result["boxes_compared"] > 0
    # mAP50 counts boxes down to score 0.001, where float-level differences may reorder near-ties in NMS.
    assert result["map50_torch"] == pytest.approx(result["map50_onnx"], abs=0.005)
    assert detection_parity_ok(result)
    assert "mAP50 PyTorch" in lines[-1]


def test_parity_fails_when_the_boxes_differ():
    boxes = np.array([[0, 0, 10, 10, 0.9, 0], [20, 20, 30, 30, 0.8, 0]], dtype=np.float32)
    moved = boxes.copy()
    moved[1, :4] += 3
    matched, compared, _ = _agreement(boxes, moved)
    assert (matched, compared) == (1, 2)
    assert not detection_parity_ok({"box_agreement": 0.5, "max_score_diff": 0.0, "map50_torch": 0.5,
                                    "map50_onnx": 0.5})
    assert not detection_parity_ok({"box_agreement": 1.0, "max_score_diff": 0.0, "map50_torch": 0.5,
                                    "map50_onnx": 0.45})


def test_a_box_scored_either_side_of_the_threshold_by_rounding_is_the_same_box():
    """Seen on an AMX Xeon: a box PyTorch scored just above the agreement threshold and ONNX Runtime a hair below it
    counted as a missing box, so the export's parity failed on rounding."""
    torch_boxes = np.array([[0, 0, 10, 10, 0.2501, 0], [20, 20, 30, 30, 0.9, 0]], dtype=np.float32)
    onnx_boxes = torch_boxes.copy()
    onnx_boxes[0, 4] = 0.2499
    assert _agreement(torch_boxes, onnx_boxes, conf=0.25, band=1e-3)[:2] == (2, 2)
    assert _agreement(onnx_boxes, torch_boxes, conf=0.25, band=1e-3)[:2] == (2, 2)
    onnx_boxes[0, 4] = 0.2  # well below: that box really is missing from ONNX Runtime's answer
    assert _agreement(torch_boxes, onnx_boxes, conf=0.25, band=1e-3)[:2] == (1, 2)
    both_below = torch_boxes.copy()
    both_below[0, 4] = 0.2495  # a pair both under the threshold is not compared
    assert _agreement(both_below, both_below, conf=0.25, band=1e-3)[:2] == (1, 1)


def test_boxes_nms_chose_between_on_a_score_tie_are_the_same_answer():
    """Seen in the TFLite detector stage test: 288 of 291 boxes agreed with scores equal to 1e-6, so ONNX was failed;
    where two overlapping boxes tie, rounding decides which one NMS keeps."""
    kept_by_torch = np.array([[0, 0, 10, 10, 0.5004, 0], [40, 40, 60, 60, 0.9, 0]], dtype=np.float32)
    kept_by_onnx = np.array([[0, 0, 10, 11, 0.5001, 0], [40, 40, 60, 60, 0.9, 0]], dtype=np.float32)  # IoU 0.91
    assert _agreement(kept_by_torch, kept_by_onnx, conf=0.25, band=1e-3)[:2] == (1, 2)  # not the same box
    assert _agreement(kept_by_torch, kept_by_onnx, conf=0.25, band=1e-3, nms_iou=0.7) == (2, 2, 0.0)
    not_a_tie = kept_by_onnx.copy()
    not_a_tie[0, 4] = 0.45  # a different score: a different answer, whatever the overlap
    assert _agreement(kept_by_torch, not_a_tie, conf=0.25, band=1e-3, nms_iou=0.7)[:2] == (1, 2)


def test_map50_of_perfect_and_of_missing_detections():
    truth = [np.array([[0, 10, 10, 50, 50], [1, 60, 60, 90, 90]], dtype=np.float64)]
    perfect = [np.array([[10, 10, 50, 50, 0.9, 0], [60, 60, 90, 90, 0.8, 1]], dtype=np.float32)]
    # 101-point interpolation integrates with the trapezoid rule, so a perfect class scores 0.995 (as in ultralytics)
    assert map50(perfect, truth, 2) == pytest.approx(0.995)
    half = [perfect[0][:1]]
    assert map50(half, truth, 2) == pytest.approx(0.995 / 2)


def test_letterbox_keeps_the_aspect_and_maps_boxes_back(tmp_path):
    from PIL import Image

    path = tmp_path / "wide.png"
    Image.new("RGB", (200, 100), (255, 0, 0)).save(path)
    array, transform = letterbox(path, 64)
    assert array.shape == (3, 64, 64) and transform["scale"] == pytest.approx(0.32)
    assert array[:, 0, 0] == pytest.approx([114 / 255] * 3)  # padding above the image
    assert array[:, 32, 32] == pytest.approx([1.0, 0.0, 0.0])
    back = to_image_pixels(np.array([[0, 16, 64, 48, 1.0, 0]], dtype=np.float32), transform)
    assert back[0, :4] == pytest.approx([0, 0, 200, 100], abs=0.5)


def test_decode_suppresses_overlapping_boxes_per_class():
    # Three anchors: two nearly identical boxes of class 0 and one of class 1 at the same place.
    raw = np.array([[20, 21, 20], [20, 20, 20], [10, 10, 10], [10, 10, 10],
                    [0.9, 0.8, 0.0], [0.0, 0.0, 0.7]], dtype=np.float32)
    dets = decode(raw, conf=0.25, iou=0.7)
    assert sorted(dets[:, 5].tolist()) == [0, 1] and dets[0, 4] == pytest.approx(0.9)


def test_bundle_infer_runs_standalone_and_matches_the_portal(detector, exported, tmp_path):
    model, samples = detector
    import torch

    from deployment.engine.detect_onnx import _export_copy

    torch_model = _export_copy(model)

    def pytorch_outputs(batch):
        with torch.no_grad():
            return torch_model(torch.from_numpy(batch)).numpy()

    bundle = build_tier_bundle(out_path=tmp_path / "bundle.zip", task="detection", tier="on_device",
                               runtime="onnxruntime", model_files={"model.onnx": exported},
                               class_names=class_names(model), input_size=INPUT_SIZE,
                               target=Target(name="Jetson_Nano", tier="on_device", accelerator="nvidia_gpu",
                                             cpu_arch="aarch64"),
                               reference=pytorch_outputs, samples=[p for p, _ in samples],
                               model_info={"name": "tiny detector: yolo11n"})
    folder = tmp_path / "unpacked"
    with zipfile.ZipFile(bundle) as zf:
        zf.extractall(folder)
    assert verify_checksums(folder) == []
    assert set(json.loads((folder / "preprocess.json").read_text())) >= {"input_size", "pad_value", "conf", "iou"}
    images = [str(p) for p, _ in samples]
    # -I: isolated, so the script sees neither the project nor its working directory, as on a device.
    run = subprocess.run([sys.executable, "-I", str(folder / "infer.py"), *images, "--out", str(tmp_path / "out"),
                          "--conf", "0.01"], capture_output=True, text=True, timeout=120, check=True)
    printed = json.loads(run.stdout)
    for image, result in zip(images, printed, strict=True):
        stem = Path(image).stem
        assert json.loads((tmp_path / "out" / f"{stem}.json").read_text()) == result
        assert (tmp_path / "out" / f"{stem}.jpg").stat().st_size > 0
    # The same boxes as PyTorch gives through the portal's decode.
    reference = check_detection_parity(model, exported, samples, input_size=INPUT_SIZE, conf=0.01)
    for (image, _), result in zip(samples, printed, strict=True):
        array, transform = letterbox(image, INPUT_SIZE)
        with torch.no_grad():
            raw = torch_model(torch.from_numpy(array[None])).numpy()[0]
        expected = to_image_pixels(decode(raw, conf=0.01), transform)
        got = np.array([[*b["box"], b["score"], b["class"]] for b in result["boxes"]], dtype=np.float32)
        matched, compared, worst = _agreement(expected, got.reshape(-1, 6))
        assert matched == compared and worst < 1e-3
    assert reference["box_agreement"] == 1.0
    # Its smoke test agrees with the PyTorch model too.
    smoke = subprocess.run([sys.executable, "-I", str(folder / "smoke_test.py")], capture_output=True, text=True,
                           timeout=120)
    assert smoke.returncode == 0 and "PASSED: 4 of 4 samples" in smoke.stdout, smoke.stdout + smoke.stderr
    # A PC's bundle serves the same boxes over HTTP: the package stage's own check (server, health, smoke test).
    from deployment.engine.bundle import check_tier_bundle

    served = build_tier_bundle(out_path=tmp_path / "pc.zip", task="detection", tier="pc", runtime="onnxruntime",
                               model_files={"model.onnx": exported}, class_names=class_names(model),
                               input_size=INPUT_SIZE, target=Target(name="Lab_PC", tier="pc"),
                               reference=pytorch_outputs, samples=[p for p, _ in samples],
                               model_info={"name": "tiny detector: yolo11n"})
    check = check_tier_bundle(served, tier="pc")
    assert check["passed"] and check["ran"][-1] == "smoke_test.py --url", check


def test_infer_script_imports_nothing_but_numpy_pillow_and_its_bundle():
    source = Path(detect_infer.__file__).read_text()
    imports = {line.split()[1].split(".")[0] for line in source.splitlines()
               if line.startswith(("import ", "from ")) or line.strip().startswith("import onnxruntime")}
    # tango_common: the bundle's copy of runtime_loader.py, which opens the model through the bundle's runtime.py
    assert imports <= {"argparse", "json", "sys", "pathlib", "numpy", "PIL", "onnxruntime", "tango_common"}


def test_measure_detector_times_the_runtime_and_scores_map50(detector, exported):
    import onnxruntime as ort

    from deployment.engine.detect_measure import measure_detector

    model, samples = detector
    session = ort.InferenceSession(str(exported), providers=["CPUExecutionProvider"])
    result = measure_detector(run=lambda batch: session.run(None, {"images": batch}), input_size=INPUT_SIZE,
                              samples=samples, num_classes=1)
    parity = check_detection_parity(model, exported, samples, input_size=INPUT_SIZE)
    assert result["map50"] == pytest.approx(parity["map50_onnx"])
    assert result["runs"] >= 1 and result["latency_p50_ms"] > 0


def test_yolov7_e6e_blocks_export_and_match_pytorch(tmp_path):
    # E6E's blocks (ReOrg stem, DownC, E-ELAN with its parameter-free shortcut, SPPCSPC, four levels) at toy
    # widths: the same layers the full model exports, in seconds.
    import onnxruntime as ort
    import torch
    from ultralytics.nn.tasks import DetectionModel

    from deployment.engine.detect_onnx import _export_copy
    from training.engine.yolo import yolov7

    plan = {"stem": 8, "down": "downc", "depth": 2, "spp": 16, "e_elan": True,
            "stages": [(16, 8, 16), (16, 8, 16), (32, 8, 32), (32, 8, 32), (32, 8, 32)],
            "up": [(16, 8, 8), (16, 8, 8), (16, 8, 8)],
            "down_path": [(16, 8, 8, 16), (16, 8, 8, 16), (16, 8, 8, 16)], "heads": (16, 16, 16, 16)}
    net, outputs = yolov7._p6(plan)
    spec = {"nc": 2, "backbone": net.rows[:net.backbone_rows],
            "head": [*net.rows[net.backbone_rows:], [outputs, 1, "Detect", ["nc"]]]}
    model = DetectionModel(spec, nc=2, verbose=False).eval().fuse(verbose=False)
    path = export_detector_onnx(model, input_size=128, path=tmp_path / "e6e-blocks.onnx")
    batch = np.random.default_rng(0).random((2, 3, 128, 128), dtype=np.float32)
    with torch.no_grad():
        expected = _export_copy(model)(torch.from_numpy(batch)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    actual = session.run(None, {"images": batch})[0]
    assert actual.shape == (2, 6, 16 * 16 + 8 * 8 + 4 * 4 + 2 * 2)
    assert np.abs(actual - expected).max() < 1e-4
