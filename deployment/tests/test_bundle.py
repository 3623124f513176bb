import json
import subprocess
import sys
import zipfile

import pytest

from deployment.engine import bundle_infer
from deployment.engine.bundle import build_bundle, render_readme, verify_checksums
from deployment.engine.onnx_export import export_onnx

from .conftest import INPUT_SIZE

EXPECTED_FILES = {"model.onnx", "labels.txt", "preprocess.json", "infer.py", "requirements.txt", "README.md",
                  "SHA256SUMS", "tango_common/__init__.py", "tango_common/images.py"}


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory):
    model, class_names = trained
    folder = tmp_path_factory.mktemp("bundle")
    onnx_path = export_onnx(model, input_size=INPUT_SIZE, path=folder / "model.onnx")
    zip_path = build_bundle(out_path=folder / "bundle.zip", onnx_path=onnx_path, class_names=class_names,
                            input_size=INPUT_SIZE, model_info={"name": "Pattern classifier", "model": "densenet_tiny"},
                            metrics={"val_top1": 0.958})
    return zip_path, onnx_path, class_names


@pytest.fixture
def unpacked(bundle, tmp_path):
    with zipfile.ZipFile(bundle[0]) as archive:
        archive.extractall(tmp_path / "bundle")
    return tmp_path / "bundle"


def test_the_bundle_holds_the_model_and_everything_to_run_it(bundle, unpacked):
    _, _, class_names = bundle
    assert {str(p.relative_to(unpacked)) for p in unpacked.rglob("*") if p.is_file()} == EXPECTED_FILES
    assert (unpacked / "labels.txt").read_text().splitlines() == class_names
    preprocess = json.loads((unpacked / "preprocess.json").read_text())
    assert preprocess["input_size"] == INPUT_SIZE and preprocess["layout"] == "NCHW"
    assert preprocess["mean"] == list(bundle_infer.IMAGENET_MEAN)
    readme = (unpacked / "README.md").read_text()
    assert "densenet_tiny" in readme and "| Validation top-1 | 95.8% |" in readme and "python infer.py" in readme
    assert "onnxruntime" in (unpacked / "requirements.txt").read_text()


def test_the_readme_says_everything_in_words_never_a_raw_dict():
    readme = render_readme(
        class_names=["cat", "dog"], input_size=64,
        model_info={"name": "resnet18", "task": "classification", "engine": "onnxruntime", "params": 11_173_962,
                    "flops": 148_000_000, "device": "Jetson_Nano"},
        metrics={"val_top1": 0.871, "benchmark": {"latency_p50_ms": 3.214, "latency_p95_ms": 4.5, "top1": 0.86,
                                                  "n_images": 54, "runs": 50, "host": "tango (x86_64, CPU)"}})
    assert "{'" not in readme and "': " not in readme and "'latency" not in readme
    for text in ("| Engine | ONNX Runtime |", "| Parameters | 11.2 M |", "| Task | Image classification |",
                 "| Latency, median | 3.21 ms |", "| Top-1 on the validation images | 86.0% |",
                 "| Measured on | tango (x86_64, CPU) |", "| Validation top-1 | 87.1% |"):
        assert text in readme


def test_checksums_cover_every_other_file_and_verify(unpacked):
    listed = {line.split("  ", 1)[1] for line in (unpacked / "SHA256SUMS").read_text().splitlines()}
    assert listed == EXPECTED_FILES - {"SHA256SUMS"}
    assert verify_checksums(unpacked) == []
    (unpacked / "labels.txt").write_text("tampered\n")
    assert verify_checksums(unpacked) == ["labels.txt"]


def test_infer_py_in_the_unpacked_bundle_predicts_what_the_portal_predicts(bundle, unpacked, val_images, tmp_path):
    _, onnx_path, class_names = bundle
    images = tmp_path / "images"
    images.mkdir()
    for i, source in enumerate(val_images[::3]):
        (images / f"{i:02d}_{source.parent.name}.png").write_bytes(source.read_bytes())

    # Run from outside the repository: the bundle must not need anything of ours.
    completed = subprocess.run(
        [sys.executable, str(unpacked / "infer.py"), str(images), "--top-k", "2", "--format", "json"],
        cwd=tmp_path, capture_output=True, text=True, timeout=120,
        env={"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"},
    )
    assert completed.returncode == 0, completed.stderr
    from_bundle = json.loads(completed.stdout)

    import onnxruntime as ort

    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    paths = sorted(images.iterdir())
    from_portal = bundle_infer.predict(session, paths, input_size=INPUT_SIZE, labels=class_names, top_k=2)

    assert [r["image"] for r in from_bundle] == [str(p) for p in paths]
    for ours, theirs in zip(from_bundle, from_portal, strict=True):
        assert [t["label"] for t in ours["top"]] == [t["label"] for t in theirs["top"]]
        assert [t["probability"] for t in ours["top"]] == pytest.approx([t["probability"] for t in theirs["top"]],
                                                                         abs=1e-6)
    # The trained model is right on most of these, and the file name says the true class.
    correct = sum(r["top"][0]["label"] in r["image"] for r in from_bundle)
    assert correct >= 0.6 * len(from_bundle)


def test_infer_py_prints_text_by_default(unpacked, val_images):
    completed = subprocess.run([sys.executable, str(unpacked / "infer.py"), str(val_images[0])],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 0, completed.stderr
    image, top = completed.stdout.strip().split(": ", 1)
    assert image == str(val_images[0]) and len(top.split(", ")) == 3


def test_building_twice_gives_the_same_bytes(bundle, tmp_path):
    zip_path, onnx_path, class_names = bundle
    again = build_bundle(out_path=tmp_path / "again.zip", onnx_path=onnx_path, class_names=class_names,
                         input_size=INPUT_SIZE, model_info={"name": "Pattern classifier", "model": "densenet_tiny"},
                         metrics={"val_top1": 0.958})
    assert again.read_bytes() == zip_path.read_bytes()


def test_preprocess_image_accepts_paths_and_grayscale_pil_images(val_images):
    from PIL import Image

    from_path = bundle_infer.preprocess_image(val_images[0], 24)
    gray = bundle_infer.preprocess_image(Image.new("L", (10, 7), 128), 24)
    assert from_path.shape == gray.shape == (3, 24, 24) and gray.dtype == "float32"
    assert gray[0, 0, 0] == pytest.approx((128 / 255 - 0.485) / 0.229, abs=1e-6)
