import json
import subprocess
import sys
import zipfile

import pytest

from deployment.engine import bundle_infer
from deployment.engine.bundle import Target, build_tier_bundle, verify_checksums
from deployment.engine.measure import torch_runner
from deployment.engine.onnx_export import export_onnx

from .conftest import INPUT_SIZE

EXPECTED_FILES = {"model.onnx", "labels.txt", "preprocess.json", "infer.py", "runtime.py", "requirements.txt",
                  "README.md", "SHA256SUMS", "tango_common/__init__.py", "tango_common/images.py",
                  "tango_common/runtime_loader.py", "smoke_test.py", "samples/expected.json", "samples/01.png",
                  "samples/02.png", "samples/03.png", "samples/04.png"}


def build_bundle(*, out_path, onnx_path, class_names, model, val_images):
    return build_tier_bundle(out_path=out_path, task="classification", tier="on_device", runtime="onnxruntime",
                             model_files={"model.onnx": onnx_path}, class_names=class_names, input_size=INPUT_SIZE,
                             target=Target(name="Odroid_N2", tier="on_device", cpu_arch="aarch64"),
                             reference=torch_runner(model), samples=val_images[::5],
                             model_info={"name": "Pattern classifier: densenet_tiny"},
                             checks=["Top-1 accuracy of the trained model on the validation split: 95.8%."])


@pytest.fixture(scope="module")
def bundle(trained, tmp_path_factory, val_images):
    model, class_names = trained
    folder = tmp_path_factory.mktemp("bundle")
    onnx_path = export_onnx(model, input_size=INPUT_SIZE, path=folder / "model.onnx")
    zip_path = build_bundle(out_path=folder / "bundle.zip", onnx_path=onnx_path, class_names=class_names,
                            model=model, val_images=val_images)
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
    assert "densenet_tiny" in readme and "95.8%" in readme and "python infer.py" in readme
    assert "Odroid_N2 (aarch64)" in readme and "ONNX Runtime in fp32" in readme
    assert "onnxruntime==" in (unpacked / "requirements.txt").read_text()


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


def test_infer_py_says_which_file_is_not_an_image(unpacked, val_images, tmp_path):
    fake = tmp_path / "notes.jpg"
    fake.write_text("a text file, named like a photo")
    completed = subprocess.run([sys.executable, str(unpacked / "infer.py"), str(val_images[0]), str(fake)],
                               capture_output=True, text=True, timeout=120)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr
    assert completed.stderr.startswith("infer.py: ") and str(fake) in completed.stderr
    assert "not an image Pillow can read" in completed.stderr


def test_building_twice_gives_the_same_bytes(bundle, trained, val_images, tmp_path):
    zip_path, onnx_path, class_names = bundle
    again = build_bundle(out_path=tmp_path / "again.zip", onnx_path=onnx_path, class_names=class_names,
                         model=trained[0], val_images=val_images)
    assert again.read_bytes() == zip_path.read_bytes()


def test_preprocess_image_accepts_paths_and_grayscale_pil_images(val_images):
    from PIL import Image

    from_path = bundle_infer.preprocess_image(val_images[0], 24)
    gray = bundle_infer.preprocess_image(Image.new("L", (10, 7), 128), 24)
    assert from_path.shape == gray.shape == (3, 24, 24) and gray.dtype == "float32"
    assert gray[0, 0, 0] == pytest.approx((128 / 255 - 0.485) / 0.229, abs=1e-6)


def test_the_readme_says_everything_in_words_never_a_raw_dict():
    from deployment.engine.bundle import RUNTIMES, render_readme

    for task, tier in (("classification", "on_device"), ("detection", "k8s")):
        readme = render_readme(
            task=task, tier=tier, engine=RUNTIMES["onnxruntime"], precision="fp16",
            target=Target(name="Jetson_Nano", tier=tier, accelerator="nvidia_gpu", cpu_arch="aarch64"),
            class_names=["cat", "dog"], input_size=64, model_info={"name": "Pets: resnet18", "project": "Pets"},
            checks=["Top-1 accuracy of the trained model on the validation split: 87.1%."],
            files=["model.onnx", "infer.py", "samples/01.jpg"], slug="pets", mean=(0.485, 0.456, 0.406),
            std=(0.229, 0.224, 0.225))
        assert "{'" not in readme and "': " not in readme and "{" not in readme.replace("{{", "")
        for text in ("ONNX Runtime in fp16", "Jetson_Nano (aarch64 with an NVIDIA GPU)", "87.1%",
                     "`samples/01.jpg`: a sample image for the smoke test", "python smoke_test.py"):
            assert text in readme
        assert ("nvidia.com/gpu: 1" in readme) == (tier == "k8s")


def test_the_readme_names_a_tflite_bundles_model_file_as_the_model():
    # Regression: a TFLite bundle's only model file was listed as "part of the model".
    from deployment.engine.bundle import RUNTIMES, render_readme

    readme = render_readme(
        task="classification", tier="on_device", engine=RUNTIMES["tflite"], precision="int8",
        target=Target(name="Galaxy_S22", tier="on_device", accelerator="gpu", cpu_arch="aarch64"),
        class_names=["cat", "dog"], input_size=64, model_info={"name": "Pets", "project": "Pets"}, checks=[],
        files=["model.tflite", "infer.py"], slug="pets", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert "`model.tflite`: the model, as TensorFlow Lite (LiteRT)" in readme and "part of the model" not in readme


def test_the_readme_says_what_each_file_of_a_tensorrt_build_kit_does():
    # Regression: trt_build.py, build_trtexec.sh, calibration.npz, kit.json and README.txt read "part of the model".
    from deployment.engine.bundle import RUNTIMES, render_readme

    kit = ["trt_build.py", "build_trtexec.sh", "calibration.npz", "kit.json", "README.txt"]
    readme = render_readme(
        task="classification", tier="on_device", engine=RUNTIMES["tensorrt"], precision="int8",
        target=Target(name="Jetson_AGX_Orin", tier="on_device", accelerator="nvidia_gpu", cpu_arch="aarch64"),
        class_names=["cat", "dog"], input_size=64, model_info={"name": "Pets", "project": "Pets"}, checks=[],
        files=["model.onnx", *kit, "infer.py"], slug="pets", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert "part of the model" not in readme
    assert "`trt_build.py`: builds the TensorRT engine from model.onnx on the device" in readme
    # Regression: README.md told to build ahead of time with runtime.build_engine (no int8 calibration) while
    # README.txt and the runtime itself build through trt_build.py; both now name the same build.
    assert "ahead of time with `python3 trt_build.py --precision int8`" in readme
    assert "runtime.build_engine" not in readme


def test_a_tensorrt_bundle_without_the_kit_builds_ahead_of_time_through_its_runtime():
    from deployment.engine.bundle import RUNTIMES, render_readme

    readme = render_readme(
        task="classification", tier="on_device", engine=RUNTIMES["tensorrt"], precision="fp16",
        target=Target(name="Jetson_AGX_Orin", tier="on_device", accelerator="nvidia_gpu", cpu_arch="aarch64"),
        class_names=["cat", "dog"], input_size=64, model_info={"name": "Pets", "project": "Pets"}, checks=[],
        files=["model.onnx", "infer.py"], slug="pets", mean=(0.485, 0.456, 0.406), std=(0.229, 0.224, 0.225))
    assert "runtime.build_engine('.'" in readme and "ahead of time with `python3 trt_build.py" not in readme


def test_a_served_tensorrt_kit_s_image_installs_the_torch_its_runtime_needs():
    # requirements.txt pins no torch (on a Jetson it is JetPack's); the x86_64 TensorRT container gets PyPI's, which
    # has CUDA, or runtime.py's GPU buffers would not import in it.
    from importlib import metadata

    from deployment.engine.bundle import RUNTIMES, dockerfile

    text = dockerfile(RUNTIMES["tensorrt"], Target(name="RTX_4090_PC", tier="pc", accelerator="nvidia_gpu"))
    assert text.startswith("# ") and "FROM nvcr.io/nvidia/tensorrt:" in text
    assert f"RUN python -m pip install --no-cache-dir torch=={metadata.version('torch')}\n" in text
    assert text.index("torch==") < text.index("CMD [")
