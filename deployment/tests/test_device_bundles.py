"""Bundles whose model file runs only on the device (RKNN's .rknn on a Rockchip NPU, TVM's compiled library): on the
device runtime.py runs that file with the runtime of the toolkit that built it, pinned for the device's architecture;
off it the bundle's smoke test runs model.onnx, and agrees with PyTorch. Real builds, unpacked and run as a team
would. Django-free."""

import ast
import json
import os
import subprocess
import sys
import zipfile

import pytest

from deployment.engine.bundle import Target, build_tier_bundle, verify_checksums
from deployment.engine.converters import registry
from deployment.engine.converters.tvm import TvmConverter
from deployment.engine.measure import torch_runner
from tango_common.sideenvs import RKNN

from .conftest import INPUT_SIZE

ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": "/tmp"}


def bundle_for(artifact, *, files, trained, val_images, tmp_path, device_arch, runtime):
    model, class_names = trained
    zip_path = build_tier_bundle(
        out_path=tmp_path / "bundle.zip", task="classification", tier="on_device", runtime=runtime,
        model_files=files, class_names=class_names, input_size=INPUT_SIZE,
        target=Target(name="Odroid_M1", tier="on_device", accelerator="rockchip_npu", cpu_arch="aarch64"),
        reference=torch_runner(model), samples=val_images[::5], precision=artifact.precision,
        model_info={"name": "Pattern classifier", "project": "Patterns"}, device_arch=device_arch,
        device_versions=artifact.converter_versions)
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    return folder


def smoke_test(folder, **env):
    return subprocess.run([sys.executable, "-I", str(folder / "smoke_test.py")], capture_output=True, text=True,
                          timeout=300, env={**ENV, **env}, cwd=folder.parent)


def calls(source: str) -> set[str]:
    """The attribute names runtime.py calls (lite.load_rknn(...) -> "load_rknn") and the modules it imports from."""
    tree = ast.parse(source)
    named = {node.func.attr for node in ast.walk(tree) if isinstance(node, ast.Call)
             and isinstance(node.func, ast.Attribute)}
    imported = {f"{node.module}.{alias.name}" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)
                for alias in node.names}
    return named | imported


@pytest.mark.skipif(not RKNN.ready(), reason="the RKNN environment is not installed (./tango engines install rknn)")
def test_an_rknn_bundle_runs_the_rknn_file_through_rknnlite_on_the_board_and_model_onnx_here(
        source, trained, val_images, tmp_path):
    artifact = registry.convert("rknn", source, precision="fp16", out_dir=tmp_path / "build",
                                options={"platform": "rk3568"})
    folder = bundle_for(artifact, files={"model.rknn": artifact.path, "model.onnx": source.onnx_path},
                        trained=trained, val_images=val_images, tmp_path=tmp_path, device_arch="aarch64",
                        runtime="rknn")
    assert (folder / "model.rknn").read_bytes() == artifact.path.read_bytes() and verify_checksums(folder) == []
    config = json.loads((folder / "preprocess.json").read_text())
    assert (config["model_file"], config["host_model_file"], config["device_arch"]) == ("model.rknn", "model.onnx",
                                                                                         "aarch64")

    # On the board: the .rknn file on the NPU through RKNNLite, the whole life of a runtime.
    device_side = calls((folder / "runtime.py").read_text())
    assert {"rknnlite.api.RKNNLite", "load_rknn", "init_runtime", "inference", "release"} <= device_side
    assert "onnxruntime" not in (folder / "runtime.py").read_text()

    # pip installs the toolkit's own runtime on the board, at the version that built the file, and ONNX Runtime
    # (for model.onnx) everywhere else.
    requirements = (folder / "requirements.txt").read_text().splitlines()
    toolkit = artifact.converter_versions["rknn-toolkit2"]
    assert toolkit.startswith("2.3.")
    assert f'rknn-toolkit-lite2=={toolkit}; platform_machine == "aarch64"' in requirements
    assert any(line.startswith("onnxruntime==") and line.endswith('; platform_machine != "aarch64"')
               for line in requirements)
    assert f'numpy=={artifact.converter_versions["numpy"]}; platform_machine == "aarch64"' in requirements

    readme = (folder / "README.md").read_text()
    assert "## Where it runs" in readme and "RKNNLite" in readme and "`runtime_host.py` runs `model.onnx`" in readme

    # Here (x86_64, not the board) the smoke test runs model.onnx and agrees with PyTorch.
    here = smoke_test(folder)
    assert here.returncode == 0, here.stdout + here.stderr
    assert "on model.onnx: this machine is not the device" in here.stdout
    assert "PASSED: 4 of 4 samples agree with the PyTorch model" in here.stdout

    # Forced onto the device's path, it goes for RKNNLite (which only exists on the board) and says so.
    forced = smoke_test(folder, TANGO_BUNDLE_MODEL="device")
    assert forced.returncode != 0 and "rknn-toolkit-lite2" in forced.stdout + forced.stderr


@pytest.mark.skipif(TvmConverter().missing() is not None, reason="apache-tvm is not installed")
def test_a_tvm_bundle_loads_the_compiled_library_with_the_tvm_runtime_that_built_it(
        source, trained, val_images, tmp_path):
    artifact = registry.convert("tvm", source, precision="fp32", out_dir=tmp_path / "build")
    folder = bundle_for(artifact, files={"model.so": artifact.path}, trained=trained, val_images=val_images,
                        tmp_path=tmp_path, device_arch=os.uname().machine, runtime="tvm")
    requirements = (folder / "requirements.txt").read_text()
    assert f"apache-tvm=={artifact.converter_versions['apache-tvm']}\n" in requirements
    assert "onnxruntime" not in requirements and not (folder / "model.onnx").exists()
    assert {"load_module", "VirtualMachine"} <= calls((folder / "runtime.py").read_text())

    done = smoke_test(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "Runtime: Apache TVM" in done.stdout and "PASSED: 4 of 4 samples agree" in done.stdout


JETSON = Target(name="Jetson_AGX_Orin", tier="on_device", accelerator="nvidia_gpu", cpu_arch="aarch64")


def imported_distributions(folder) -> set[str]:
    """The top-level modules the bundle's Python files import, less the standard library and the bundle's own."""
    own = {path.stem for path in folder.glob("*.py")} | {path.name for path in folder.iterdir() if path.is_dir()}
    names = set()
    for path in folder.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - own


@pytest.mark.skipif(registry.converter_for("tensorrt").precisions(),
                    reason="tensorrt imports here: the artifact is an engine")
def test_a_tensorrt_kit_for_a_jetson_lists_what_its_scripts_import_and_runs_model_onnx_here(
        source, trained, val_images, tmp_path):
    # A new user's walk: the Jetson kit pinned PyPI's torch (CPU-only on aarch64) and numpy/onnxruntime versions
    # that do not install on JetPack's Python 3.10, and the package stage only verified its checksums.
    from packaging.requirements import Requirement

    artifact = registry.convert("tensorrt", source, precision="fp16", out_dir=tmp_path / "build")
    files = {"model.onnx": artifact.path, **{p.name: p for p in artifact.files if p.name != "model.onnx"}}
    model, class_names = trained
    zip_path = build_tier_bundle(
        out_path=tmp_path / "bundle.zip", task="classification", tier="on_device", runtime="tensorrt",
        model_files=files, class_names=class_names, input_size=INPUT_SIZE, target=JETSON,
        reference=torch_runner(model), samples=val_images[::5], precision="fp16",
        model_info={"name": "Pattern classifier", "project": "Patterns"})
    folder = tmp_path / "bundle"
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    assert {"trt_build.py", "runtime.py", "runtime_host.py", "infer.py", "smoke_test.py"} <= {
        p.name for p in folder.glob("*.py")}

    text = (folder / "requirements.txt").read_text()
    requirements = [Requirement(line.split("#")[0]) for line in text.splitlines()
                    if line.strip() and not line.startswith("#")]
    jetson = {"platform_machine": "aarch64", "python_version": "3.10"}
    on_jetson = {r.name.lower(): r for r in requirements if r.marker is None or r.marker.evaluate(jetson)}
    off_device = {r.name.lower(): r for r in requirements if r.marker is None or r.marker.evaluate(
        {"platform_machine": "x86_64"})}
    jetpack = {line.split(":")[0].strip("# ") for line in text.splitlines() if line.startswith("#   ")}
    readme = (folder / "README.md").read_text()
    assert jetpack == {"tensorrt", "torch", "cuda"}
    assert not {"torch", "tensorrt", "cuda-python"} & (on_jetson.keys() | off_device.keys())  # never a PyPI wheel
    distribution = {"PIL": "pillow"}
    for module in imported_distributions(folder):
        listed = distribution.get(module, module)
        documented = module in jetpack and f"- `{module}`:" in readme
        # onnxruntime is listed off the device only: runtime_host.py runs where tensorrt does not import
        assert listed in on_jetson.keys() | off_device.keys() or documented, (
            f"{module} is imported but neither listed nor JetPack-provided")
    assert {"numpy", "pillow"} <= on_jetson.keys() and not on_jetson["numpy"].specifier.contains("2.0")
    assert set(off_device) == {"numpy", "pillow", "onnxruntime"} and all(r.specifier for r in off_device.values())
    assert "--system-site-packages" in readme and "JetPack" in readme

    # Here (no tensorrt) the smoke test runs the kit's model.onnx on ONNX Runtime and agrees with PyTorch.
    done = smoke_test(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "tensorrt does not import here" in done.stdout and "onnxruntime" in done.stdout
    assert "PASSED: 4 of 4 samples agree with the PyTorch model" in done.stdout


@pytest.mark.skipif(registry.converter_for("tensorrt").precisions(),
                    reason="tensorrt imports here: the artifact is an engine")
def test_a_served_tensorrt_kit_is_checked_here_through_its_server_on_onnx_runtime(source, trained, val_images,
                                                                                 tmp_path):
    from deployment.engine.bundle import check_tier_bundle

    artifact = registry.convert("tensorrt", source, precision="fp16", out_dir=tmp_path / "build")
    model, class_names = trained
    zip_path = build_tier_bundle(
        out_path=tmp_path / "bundle.zip", task="classification", tier="pc", runtime="tensorrt",
        model_files={"model.onnx": artifact.path}, class_names=class_names, input_size=INPUT_SIZE,
        target=Target(name="RTX_4090_PC", tier="pc", accelerator="nvidia_gpu"), reference=torch_runner(model),
        samples=val_images[::5], precision="fp16", model_info={"name": "Pattern classifier"})
    check = check_tier_bundle(zip_path, tier="pc")
    assert check["passed"], check
    assert check["ran"] == ["smoke_test.py", "serve.py", "healthcheck.py", "smoke_test.py --url"]
    assert any("tensorrt does not import here" in line for line in check["smoke_test"])
