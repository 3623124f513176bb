"""Bundles per device tier, unpacked and run as a team would: the smoke test, the HTTP server and its health check,
on the real engines, compared with the PyTorch model they were made from."""

import json
import subprocess
import sys
import urllib.error
import urllib.request
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from deployment.engine.bundle import PORT, Target, Tier, build_tier_bundle, verify_checksums
from deployment.engine.onnx_export import export_onnx

from .conftest import INPUT_SIZE

ENV = {"PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1", "HOME": "/tmp"}
COMMON = {"labels.txt", "preprocess.json", "infer.py", "runtime.py", "tango_common/__init__.py",
          "tango_common/images.py", "tango_common/runtime_loader.py", "smoke_test.py", "samples/expected.json",
          "samples/01.png", "samples/02.png", "samples/03.png", "samples/04.png", "requirements.txt", "README.md",
          "SHA256SUMS"}
SERVED = {"serve.py", "healthcheck.py", "Dockerfile"}


def torch_reference(model):
    def run(batch):
        with torch.inference_mode():
            return model(torch.from_numpy(batch)).numpy()

    return run


@pytest.fixture(scope="module")
def onnx_model(trained, tmp_path_factory):
    model, _ = trained
    return export_onnx(model, input_size=INPUT_SIZE, path=tmp_path_factory.mktemp("onnx") / "model.onnx")


def make_bundle(tmp_path, trained, val_images, *, tier, runtime="onnxruntime", model_files, accelerator="none",
                name="bundle"):
    model, class_names = trained
    target = Target(name="Lab_GPU" if accelerator == "nvidia_gpu" else "Lab_box", tier=tier,
                    accelerator=accelerator, memory_mb=8192)
    zip_path = build_tier_bundle(
        out_path=tmp_path / f"{name}.zip", task="classification", tier=tier, runtime=runtime,
        model_files=model_files, class_names=class_names, input_size=INPUT_SIZE, target=target,
        reference=torch_reference(model), samples=val_images[::5], slug="patterns",
        model_info={"name": "Pattern classifier", "project": "Patterns"},
        checks=["Top-1 on the validation split: 95.8% (PyTorch 95.8%)."])
    folder = tmp_path / name
    with zipfile.ZipFile(zip_path) as archive:
        archive.extractall(folder)
    for script in ("infer.py", "smoke_test.py", "serve.py", "healthcheck.py"):
        if (folder / script).exists():  # zipfile drops the mode bits the zip carries; unzip keeps them
            (folder / script).chmod(0o755)
    return zip_path, folder


def files_in(folder: Path) -> set[str]:
    return {str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()}


def run_script(folder: Path, *args, cwd, env=None) -> subprocess.CompletedProcess:
    # -I: the bundle must run with nothing of ours on sys.path, from any folder.
    return subprocess.run([sys.executable, "-I", *map(str, args)], cwd=cwd, capture_output=True, text=True,
                          timeout=120, env={**ENV, **(env or {})})


class Server:
    """serve.py from an unpacked bundle, on a free port, stopped at the end."""

    def __init__(self, folder: Path):
        self.process = subprocess.Popen([sys.executable, "-I", str(folder / "serve.py"), "--port", "0"],
                                        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
        line = self.process.stdout.readline()  # printed once the model is loaded and warmed up
        assert line.startswith("Serving"), line + self.process.stderr.read()
        self.url = line.split(" on ", 1)[1].split()[0]

    def post(self, data: bytes, query: str = "") -> tuple[int, bytes, str]:
        request = urllib.request.Request(f"{self.url}/predict{query}", data=data, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                return answer.status, answer.read(), answer.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            return error.code, error.read(), error.headers["Content-Type"]

    def stop(self):
        self.process.terminate()
        self.process.wait(timeout=10)
        self.process.stdout.close()
        self.process.stderr.close()


def test_on_device_bundle_checks_itself_with_its_smoke_test(trained, val_images, onnx_model, tmp_path):
    _, folder = make_bundle(tmp_path, trained, val_images, tier=Tier.ON_DEVICE,
                            model_files={"model.onnx": onnx_model})
    assert files_in(folder) == COMMON | {"model.onnx"}
    assert verify_checksums(folder) == []
    requirements = (folder / "requirements.txt").read_text()
    assert "onnxruntime==" in requirements and "numpy==" in requirements and ">" not in requirements
    readme = (folder / "README.md").read_text()
    assert "python smoke_test.py" in readme and "Lab_box" in readme and "{" not in readme  # words, no raw dicts

    done = run_script(folder, folder / "smoke_test.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "PASSED: 4 of 4 samples agree with the PyTorch model" in done.stdout

    # The expected answers are the PyTorch model's; a bundle whose model answers otherwise fails the test.
    expected = json.loads((folder / "samples" / "expected.json").read_text())
    wrong = next(label for label in trained[1] if label != expected["results"][0]["top"][0]["label"])
    expected["results"][0]["top"][0]["label"] = wrong
    (folder / "samples" / "expected.json").write_text(json.dumps(expected))
    _resum(folder)
    done = run_script(folder, folder / "smoke_test.py", cwd=tmp_path)
    assert done.returncode == 1 and "FAILED: 3 of 4 samples agree" in done.stdout and "DIFF" in done.stdout


def _resum(folder: Path) -> None:
    import hashlib

    lines = []
    for line in (folder / "SHA256SUMS").read_text().splitlines():
        name = line.split("  ", 1)[1]
        lines.append(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}\n")
    (folder / "SHA256SUMS").write_text("".join(lines))


@pytest.mark.parametrize("tier", [Tier.PC, Tier.CLOUD, Tier.K8S])
def test_served_bundle_answers_over_http_like_the_pytorch_model(tier, trained, val_images, onnx_model, tmp_path):
    _, folder = make_bundle(tmp_path, trained, val_images, tier=tier, model_files={"model.onnx": onnx_model})
    extra = {"k8s/deployment.yaml", "k8s/service.yaml"} if tier == Tier.K8S else set()
    assert files_in(folder) == COMMON | SERVED | extra | {"model.onnx"}
    dockerfile = (folder / "Dockerfile").read_text()
    assert "FROM python:3.11-slim" in dockerfile and 'CMD ["python", "healthcheck.py"]' in dockerfile
    assert "RUN python smoke_test.py" in dockerfile and 'CMD ["python", "serve.py"' in dockerfile

    server = Server(folder)
    try:
        health = run_script(folder, folder / "healthcheck.py", server.url, cwd=tmp_path)
        assert health.returncode == 0 and "onnxruntime" in health.stdout, health.stderr
        # serve.py took --port: so does the health check, and the PORT variable the Dockerfile sets still works
        port = server.url.rsplit(":", 1)[1]
        for health in (run_script(folder, folder / "healthcheck.py", "--port", port, cwd=tmp_path),
                       run_script(folder, folder / "healthcheck.py", cwd=tmp_path, env={"PORT": port})):
            assert health.returncode == 0 and "healthy: onnxruntime" in health.stdout, health.stderr
        assert f"python healthcheck.py --port {PORT}" in (folder / "README.md").read_text()
        done = run_script(folder, folder / "smoke_test.py", "--url", server.url, cwd=tmp_path)
        assert done.returncode == 0, done.stdout + done.stderr
        assert f"PASSED: 4 of 4 samples agree with the PyTorch model on {server.url}" in done.stdout

        status, body, _ = server.post(val_images[0].read_bytes(), "?top_k=2")
        answer = json.loads(body)
        model, class_names = trained
        from tango_common.images import preprocess_image

        with torch.inference_mode():
            logits = model(torch.from_numpy(preprocess_image(val_images[0], INPUT_SIZE)[None])).numpy()[0]
        assert status == 200 and len(answer["top"]) == 2
        assert answer["top"][0]["label"] == class_names[int(np.argmax(logits))]
        status, body, _ = server.post(b"not an image at all")
        assert status == 400 and "not an image" in json.loads(body)["detail"]
    finally:
        server.stop()
    # With the server gone the health check says so.
    assert run_script(folder, folder / "healthcheck.py", server.url, cwd=tmp_path).returncode == 1
    if tier == Tier.K8S:
        deployment = yaml.safe_load((folder / "k8s" / "deployment.yaml").read_text())
        container = deployment["spec"]["template"]["spec"]["containers"][0]
        assert container["readinessProbe"]["httpGet"]["path"] == "/healthz"
        assert "nvidia.com/gpu" not in container["resources"]["limits"]  # this device has no GPU
        service = yaml.safe_load((folder / "k8s" / "service.yaml").read_text())
        assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"]


def test_k8s_bundle_for_a_gpu_device_requests_the_gpu(trained, val_images, onnx_model, tmp_path):
    _, folder = make_bundle(tmp_path, trained, val_images, tier=Tier.K8S, accelerator="nvidia_gpu",
                            model_files={"model.onnx": onnx_model})
    container = yaml.safe_load((folder / "k8s" / "deployment.yaml").read_text())["spec"]["template"]["spec"][
        "containers"][0]
    assert container["resources"]["limits"]["nvidia.com/gpu"] == 1
    assert "onnxruntime-gpu==" in (folder / "requirements.txt").read_text()
    assert "FROM nvidia/cuda" in (folder / "Dockerfile").read_text()
    assert json.loads((folder / "preprocess.json").read_text())["gpu"] is True
    # No GPU here: the CUDA provider is absent, and runtime.py falls back to the CPU.
    done = run_script(folder, folder / "smoke_test.py", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr


def test_openvino_and_torchscript_bundles_run_on_their_own_engines(trained, val_images, onnx_model, tmp_path):
    import openvino as ov

    model, _ = trained
    ov.save_model(ov.convert_model(str(onnx_model)), str(tmp_path / "model.xml"), compress_to_fp16=False)
    _, folder = make_bundle(tmp_path, trained, val_images, tier=Tier.ON_DEVICE, runtime="openvino",
                            model_files={"model.xml": tmp_path / "model.xml", "model.bin": tmp_path / "model.bin"},
                            name="openvino")
    assert "openvino==" in (folder / "requirements.txt").read_text()
    done = run_script(folder, folder / "smoke_test.py", cwd=tmp_path)
    assert done.returncode == 0 and "PASSED" in done.stdout, done.stdout + done.stderr

    scripted = torch.jit.trace(model, torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE))
    scripted.save(str(tmp_path / "model.ts"))
    _, folder = make_bundle(tmp_path, trained, val_images, tier=Tier.ON_DEVICE, runtime="torchscript",
                            model_files={"model.ts": tmp_path / "model.ts"}, name="torchscript")
    assert "torch==" in (folder / "requirements.txt").read_text()
    # In this process (torch is loaded already; a subprocess would spend seconds importing it again): the bundle's
    # own runtime.py opens model.ts and answers what the PyTorch model answers.
    from tango_common.runtime_loader import describe_session, open_session

    session = open_session(folder, json.loads((folder / "preprocess.json").read_text()))
    assert describe_session(folder, session).endswith("TorchScript (cpu)")
    batch = np.random.default_rng(0).random((3, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    assert np.abs(session.run(None, {"images": batch})[0] - torch_reference(model)(batch)).max() < 1e-5
