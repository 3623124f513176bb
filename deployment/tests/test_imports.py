"""Bring your own model: an ONNX or TorchScript file with its own normalisation, checked, imported, and taken
through the same convert → benchmark → package stages as a model trained here."""

import json
import zipfile
from pathlib import Path

import onnx
import pytest
import torch
from django.core.files.uploadedfile import SimpleUploadedFile
from django.test import Client
from django.urls import reverse

from deployment import packaging, services
from deployment.engine.model_import import (
    ImportRefused,
    fold_normalisation_onnx,
    inspect_onnx,
    run_onnx_once,
    torchscript_to_onnx,
)
from deployment.engine.onnx_export import export_onnx
from deployment.models import Artifact
from projects.jobs.models import Job
from projects.jobs.storage import absolute, project_dir
from projects.tests import factories
from tango_common.images import IMAGENET_MEAN, IMAGENET_STD, preprocess_image
from tango_common.sandbox import landlock_abi
from training.engine.zoo import build_model
from training.models import TrainingRun

from .test_stages import Report, job_for

INPUT_SIZE = 16
THEIRS = (0.5, 0.5, 0.5)  # the imported model's own mean and std


class TheirModel(torch.nn.Module):
    """A classifier trained elsewhere on pixels normalised with mean 0.5, std 0.5: ours inside, their input."""

    def __init__(self, ours):
        super().__init__()
        self.ours = ours
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).reshape(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(IMAGENET_STD).reshape(1, 3, 1, 1))

    def forward(self, x):
        return self.ours(((x * 0.5 + 0.5) - self.mean) / self.std)


@pytest.fixture(scope="module")
def ours():
    torch.manual_seed(0)
    return build_model("densenet_tiny", num_classes=3, input_size=INPUT_SIZE).eval()


@pytest.fixture(scope="module")
def their_onnx(ours, tmp_path_factory):
    return export_onnx(TheirModel(ours).eval(), input_size=INPUT_SIZE,
                       path=tmp_path_factory.mktemp("theirs") / "theirs.onnx")


def ours_on(ours, batch):
    with torch.inference_mode():
        return ours(torch.from_numpy(batch)).numpy()


def test_their_normalisation_is_folded_in_and_the_model_answers_as_trained(ours, their_onnx, tmp_path):
    import numpy as np
    import onnxruntime as ort

    checks = inspect_onnx(their_onnx, task="classification", input_size=INPUT_SIZE, num_classes=3)
    assert checks["opset"] == 17 and checks["input"].endswith("3 x 16 x 16")
    folded = fold_normalisation_onnx(their_onnx, tmp_path / "model.onnx", task="classification", mean=THEIRS,
                                     std=THEIRS)
    assert run_onnx_once(folded, input_size=INPUT_SIZE, task="classification", num_classes=3)["ran"]
    batch = np.random.default_rng(1).random((4, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    session = ort.InferenceSession(str(folded), providers=["CPUExecutionProvider"])
    # The pipeline feeds ImageNet-normalised images; the folded model turns them into what it was trained on.
    assert np.abs(session.run(None, {"images": batch})[0] - ours_on(ours, batch)).max() < 1e-4


def test_a_torchscript_model_is_loaded_safely_and_exported(ours, tmp_path):
    import numpy as np
    import onnxruntime as ort

    path = tmp_path / "theirs.ts"
    torch.jit.trace(TheirModel(ours).eval(), torch.zeros(1, 3, INPUT_SIZE, INPUT_SIZE)).save(str(path))
    onnx_path, checks = torchscript_to_onnx(path, tmp_path / "model.onnx", task="classification",
                                            input_size=INPUT_SIZE, num_classes=3, mean=THEIRS, std=THEIRS)
    batch = np.random.default_rng(2).random((2, 3, INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert np.abs(session.run(None, {"images": batch})[0] - ours_on(ours, batch)).max() < 1e-4
    # A pickled module (torch.save) is refused without torch ever unpickling it.
    pickled = tmp_path / "pickled.pt"
    torch.save(ours, str(pickled), _use_new_zipfile_serialization=False)
    with pytest.raises(ImportRefused, match="pickled models are not accepted"):
        torchscript_to_onnx(pickled, tmp_path / "x.onnx", task="classification", input_size=INPUT_SIZE,
                            num_classes=3, mean=THEIRS, std=THEIRS)


class Plain(torch.nn.Module):
    def forward(self, x):
        return x.mean(dim=(2, 3))


def rewritten(path, out, old, new):
    """A copy of the TorchScript archive at path with old replaced by new in its code: what an attacker edits."""
    import zipfile

    with zipfile.ZipFile(path) as source, zipfile.ZipFile(out, "w") as target:
        for name in source.namelist():
            data = source.read(name)
            target.writestr(name, data.replace(old.encode(), new.encode()) if "/code/" in name else data)
    return out


@pytest.mark.parametrize("call", ["torch.save(secret, {marker})", 'getattr(torch, "save")(secret, {marker})',
                                  "ops.aten.save(secret, {marker})", "secret.save({marker})",
                                  "ops.debugprims.load_tensor({marker}, [4], 0, 0, None)",
                                  "__torch__.torch.classes.dist_c10d.FileStore({marker}, 1)"])
def test_a_torchscript_model_that_reaches_the_servers_files_is_refused_before_it_runs(tmp_path, call):
    """torch.jit.load runs no pickle, but TorchScript code runs ops, and torch.from_file / torch.save read and write
    any file the server can: such an import used to be accepted, having written its file (the portal's own code
    could be overwritten this way). Every spelling of the call is refused before torch opens the file."""
    marker = tmp_path / "written-by-the-model"
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(Plain()).save(str(scripted))
    # What the attacker writes into the model's code: copy the first bytes of a server file to a file of theirs.
    evil = call.format(marker=f'"{marker}"')
    path = rewritten(scripted, tmp_path / "theirs.pt", "-> Tensor:\n", "-> Tensor:\n"
                     f'    secret = torch.from_file("/etc/passwd", False, 4, dtype=0)\n    {evil}\n')
    with pytest.raises(ImportRefused, match="accepted"):
        torchscript_to_onnx(path, tmp_path / "model.onnx", task="classification", input_size=INPUT_SIZE,
                            num_classes=3, mean=THEIRS, std=THEIRS)
    assert not marker.exists()


def evil_model(tmp_path, line: str) -> Path:
    """The Plain model, its forward starting with line (TorchScript): what an attacker writes into the code."""
    scripted = tmp_path / "scripted.pt"
    torch.jit.script(Plain()).save(str(scripted))
    return rewritten(scripted, tmp_path / "theirs.pt", "-> Tensor:\n", f"-> Tensor:\n    {line}\n")


def checked_without_reading_its_code(path, tmp_path):
    from deployment.engine.model_import import checked_in_child

    return checked_in_child(path, tmp_path / "out" / "model.onnx", fmt="torchscript", task="classification",
                            input_size=INPUT_SIZE, num_classes=3, mean=THEIRS, std=THEIRS, read_code_first=False)


needs_landlock = pytest.mark.skipif(landlock_abi() == 0, reason="this kernel has no Landlock: the check is unsandboxed")


@needs_landlock
@pytest.mark.parametrize("reach", ["reads", "writes"])
def test_the_sandbox_alone_stops_a_model_that_reaches_the_servers_files(tmp_path, reach):
    """The second line of defence on its own: with the reading of the model's code turned off (as if it missed an
    op), a model whose forward reads a file next to the upload (standing in for the server's secrets) or creates
    and writes one (the portal's code) fails the check with a clear error, and the file is neither read nor
    written."""
    secret = tmp_path / "secret.txt"
    secret.write_text("SECRET_KEY=hunter2-not-for-models")
    marker = tmp_path / "written-by-the-model"
    path = evil_model(tmp_path, {
        "reads": f'x = x + torch.sum(torch.from_file("{secret}", False, 9, dtype=0))',
        "writes": f'x = x + torch.sum(torch.from_file("{marker}", True, 9, dtype=0).fill_(65))'}[reach])
    torch.jit.load(str(path))(torch.zeros(1, 3, 4, 4))  # unconfined (this test's process) it does what it says
    assert marker.exists() == (reach == "writes")
    marker.unlink(missing_ok=True)

    with pytest.raises(ImportRefused, match="Permission denied.*sandboxed") as refused:
        checked_without_reading_its_code(path, tmp_path)
    assert "hunter2" not in str(refused.value)
    assert not marker.exists() and not (tmp_path / "out" / "model.onnx").exists()
    assert secret.read_text() == "SECRET_KEY=hunter2-not-for-models"


@needs_landlock
def test_the_sandbox_alone_stops_torch_save_writing_though_torch_does_not_say(tmp_path):
    """TorchScript's torch.save ignores a file it cannot open: the model's write is stopped, but the check does not
    see it fail (the reading of the code, on in production, refuses torch.save before the model runs)."""
    marker = tmp_path / "written-by-the-model"
    path = evil_model(tmp_path, f'torch.save(x, "{marker}")')
    torch.jit.load(str(path))(torch.zeros(1, 3, 4, 4))
    assert marker.exists()
    marker.unlink()
    checked_without_reading_its_code(path, tmp_path)
    assert not marker.exists()


def test_an_ordinary_import_check_says_it_ran_sandboxed(tmp_path):
    from deployment.engine.model_import import checked_in_child

    torch.jit.script(Plain()).save(str(tmp_path / "plain.pt"))
    checks = checked_in_child(tmp_path / "plain.pt", tmp_path / "out" / "model.onnx", fmt="torchscript",
                              task="classification", input_size=INPUT_SIZE, num_classes=3, mean=THEIRS, std=THEIRS)
    assert checks["run"]["ran"] and (tmp_path / "out" / "model.onnx").exists()
    expected = "sandboxed by Landlock" if landlock_abi() else "not sandboxed (kernel without Landlock)"
    assert checks["sandbox"].startswith(expected)


def test_scripted_and_traced_torchvision_models_pass_the_code_check(tmp_path):
    """The check reads the code of ordinary models as harmless, class paths such as torchvision.ops.misc too."""
    import torchvision

    from deployment.engine.model_import import check_torchscript_archive

    model = torchvision.models.mobilenet_v3_small(num_classes=3).eval()
    for name, module in (("scripted", torch.jit.script(model)),
                         ("traced", torch.jit.trace(model, torch.zeros(1, 3, 32, 32)))):
        module.save(str(tmp_path / f"{name}.pt"))
        check_torchscript_archive(tmp_path / f"{name}.pt")


def external_weights_model(location, *, where):
    """N x 3 x 8 x 8 -> N x 2 whose weights (a Constant node's, or a subgraph's initializer) are in another file."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    weights = numpy_helper.from_array(np.zeros((3, 2), np.float32), "w")
    weights.ClearField("raw_data")
    weights.data_location = TensorProto.EXTERNAL
    for key, value in (("location", location), ("offset", "0"), ("length", "24")):
        weights.external_data.add(key=key, value=value)
    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0)]
    if where == "constant":
        nodes += [helper.make_node("Constant", [], ["w"], value=weights)]
    else:  # If(true) whose branch holds the weights as its own initializer
        branch = helper.make_graph([helper.make_node("Identity", ["w0"], ["w"])], "then", [],
                                   [helper.make_tensor_value_info("w", TensorProto.FLOAT, [3, 2])])
        weights.name = "w0"
        branch.initializer.append(weights)
        nodes += [helper.make_node("Constant", [], ["yes"], value=numpy_helper.from_array(np.array(True))),
                  helper.make_node("If", ["yes"], ["w"], then_branch=branch, else_branch=branch)]
    nodes.append(helper.make_node("MatMul", ["m", "w"], ["y"]))
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.parametrize("where", ["constant", "subgraph"])
@pytest.mark.parametrize("location", ["../../../../../../etc/passwd", "/etc/passwd", "secret.txt"])
def test_an_onnx_model_whose_weights_point_at_another_file_is_refused(tmp_path, monkeypatch, where, location):
    """Only initializers were checked for external data: a Constant naming a file of the working directory passed
    onnx's checker (which resolves it there), then the fold loaded it and failed with an error no one caught."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "secret.txt").write_bytes(b"SECRET_KEY=" + b"x" * 40)
    (tmp_path / "upload").mkdir()
    path = tmp_path / "upload" / "theirs.onnx"
    path.write_bytes(external_weights_model(location, where=where).SerializeToString())
    with pytest.raises(ImportRefused, match="separate file"):
        inspect_onnx(path, task="classification", input_size=8, num_classes=2)


def memory_hungry_model(gigabytes):
    """N x 3 x 8 x 8 -> N x 2 that fills a buffer of `gigabytes` on the way (ConstantOfShape, summed, times 0)."""
    import numpy as np
    from onnx import TensorProto, helper, numpy_helper

    def const(name, value):
        return numpy_helper.from_array(np.asarray(value), name)

    nodes = [helper.make_node("ReduceMean", ["x"], ["m"], axes=[2, 3], keepdims=0),
             helper.make_node("MatMul", ["m", "w"], ["scores"]),
             helper.make_node("ConstantOfShape", ["shape"], ["big"], value=const("one", np.ones(1, np.float32))),
             helper.make_node("ReduceSum", ["big"], ["total"], keepdims=0),
             helper.make_node("Mul", ["total", "zero"], ["nothing"]),
             helper.make_node("Add", ["scores", "nothing"], ["y"])]
    graph = helper.make_graph(
        nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["N", 3, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["N", 2])],
        initializer=[const("w", np.ones((3, 2), np.float32)), const("zero", np.float32(0)),
                     const("shape", np.array([int(gigabytes * 2**30) // 4], np.int64))])
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])


@pytest.mark.django_db
def test_a_model_that_needs_more_memory_than_the_check_allows_is_refused_and_the_server_lives(settings, tmp_path,
                                                                                               monkeypatch):
    """The check ran in the web process: a model that asks for 50 GB on its one run took the server down with it.
    It now runs in a child process with its memory capped (here 1 GiB, and a model that wants 2)."""
    from django.core.exceptions import ValidationError

    from deployment.engine import model_import as core
    from deployment.imports import model_import

    settings.MEDIA_ROOT = tmp_path / "media"
    monkeypatch.setattr(core, "CHECK_MEMORY_BYTES", 2**30)
    project = factories.training_project(factories.team_with("Vision", alice="owner"))
    project.dataset.class_names = ["cat", "dog"]
    project.dataset.save()
    upload = SimpleUploadedFile("hungry.onnx", memory_hungry_model(2).SerializeToString())
    with pytest.raises(ValidationError, match="needs more than 1024 MB of memory|Failed to allocate"):
        model_import(project=project, upload=upload, input_size=8)
    assert not TrainingRun.objects.filter(project=project).exists()
    small = SimpleUploadedFile("small.onnx", memory_hungry_model(0.01).SerializeToString())
    assert model_import(project=project, upload=small, input_size=8).architecture["checks"]["run"]["ran"]


@pytest.mark.parametrize(("change", "message"), [
    ("opset", "opset 22"),
    ("labels", "N x 5 (one score per label)"),
    ("size", "the input size given is 32"),
    ("garbage", "not a valid ONNX model"),
])
def test_a_model_that_does_not_fit_is_refused_with_the_reason(their_onnx, tmp_path, change, message):
    path, num_classes, size = their_onnx, 3, INPUT_SIZE
    if change == "opset":
        model = onnx.load(str(their_onnx))
        model.opset_import[0].version = 22
        path = tmp_path / "new.onnx"
        onnx.save(model, str(path))
    elif change == "labels":
        num_classes = 5
    elif change == "size":
        size = 32
    else:
        path = tmp_path / "garbage.onnx"
        path.write_bytes(b"\x08\x07not protobuf at all")
    with pytest.raises(ImportRefused, match=message.replace("(", r"\(").replace(")", r"\)")):
        inspect_onnx(path, task="classification", input_size=size, num_classes=num_classes)


@pytest.mark.django_db
def test_an_imported_model_goes_through_convert_benchmark_and_package(their_onnx, ours, settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    project = factories.training_project(team)
    project.input_size = 2 * INPUT_SIZE  # the import brings its own size
    project.save(update_fields=["input_size"])
    client = Client()
    client.force_login(team.members.get(username="alice"))
    url = reverse("deployment:model_import", args=[project.pk])

    refused = client.post(url, {"file": SimpleUploadedFile("theirs.onnx", b"junk"), "labels": "\n".join(
        project.dataset.class_names), "input_size": INPUT_SIZE, "mean": "0.5, 0.5, 0.5", "std": "0.5, 0.5, 0.5"})
    assert refused.status_code == 400 and "not a valid ONNX model" in refused.content.decode()
    assert not Job.objects.exists() and not any((project_dir(project.pk)).rglob("*.onnx"))
    assert "none — trains from scratch" in client.get(reverse("projects:detail", args=[project.pk])).content.decode()

    done = client.post(url, {"file": SimpleUploadedFile("theirs.onnx", their_onnx.read_bytes()), "labels": "\n".join(
        project.dataset.class_names), "input_size": INPUT_SIZE, "mean": "0.5, 0.5, 0.5", "std": "0.5 0.5 0.5"})
    assert done.status_code == 302, done.content.decode()[-800:]
    run = TrainingRun.objects.get(project=project)
    assert run.architecture["imported"] == "onnx" and run.job.status == "succeeded"
    # Regression: the project kept the size it was created with (the page said 120 px after a 96 px import)
    page = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert f"<dt>Input size</dt><dd>{INPUT_SIZE} px</dd>" in page
    # the card says where the model came from (it said "none — trains from scratch")
    assert ('<dd data-testid="weights">none — the model was imported: theirs.onnx (ONNX), not trained here <span '
            'class="muted small" data-testid="import-score">top-1 ' in page) and "trains from scratch" not in page

    project.refresh_from_db()
    project.engine = "openvino"  # the target is built through the same accuracy guard as a trained model's
    project.save()
    convert = job_for(project, "convert")
    converted = Report()
    convert.result = services.convert_stage(convert, converted)
    convert.status = "succeeded"
    convert.save()
    onnx_artifact = Artifact.objects.get(job=convert, kind="onnx")
    assert onnx_artifact.status == "verified"
    target = Artifact.objects.get(pk=convert.result["target"]["artifact"])
    assert (target.engine, target.status) == ("openvino", "verified") and target.checks["guard"]["passed"]
    # the guard's reference is the imported model, not a PyTorch model this project never had: the log, the page and
    # the bundle name it in the same words (the guard's attempt lines said "(PyTorch 91.25%)", the bundle "imported")
    assert "of the imported model" in convert.result["target"]["guard"]["summary"]
    assert any(line.startswith("Accuracy guard: the imported model on ") for line in converted.lines)
    assert any("(the imported model " in line for line in converted.lines if line.startswith("guard: "))
    assert not any("PyTorch" in line for line in converted.lines), converted.lines
    card = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert "The imported model: top1" in card[card.index("Target: openvino"):]

    benchmarked = Report()
    benchmark = job_for(project, "benchmark")
    result = services.benchmark_stage(benchmark, benchmarked)
    benchmark.result, benchmark.status = result, "succeeded"
    benchmark.save()
    # said in words, not as a ValueError listing the zoo's sixteen model names
    assert "ONNX model: an imported model is not stored as a recommender record; its figures stand here." in (
        benchmarked.lines) and not any("Error" in line for line in benchmarked.lines)
    row = next(r for r in result["rows"] if r["engine"] == "onnxruntime")
    # Its rows are read against the model as imported, and the card does not claim they were stored as records
    target_row = next(r for r in result["rows"] if r["engine"] == "openvino")
    assert (row["speedup"], row["delta"]) == (1.0, 0.0) and target_row["speedup"] > 0 and target_row["delta"] <= 0
    card = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    card = card[card.index('id="stage-benchmark"'):]
    assert "Speed-up and Δ accuracy are against the imported model (ONNX fp32)." in card
    assert "No row is stored as a benchmark record of this server" in card and "Each row is stored" not in card
    images = sorted((project.dataset.root / "val").glob("*/*.png"))
    import numpy as np

    batch = np.stack([preprocess_image(p, INPUT_SIZE) for p in images])
    labels = [p.parent.name for p in images]
    expected = np.mean([project.dataset.class_names[i] == label
                        for i, label in zip(ours_on(ours, batch).argmax(1), labels, strict=True)])
    assert row["top1"] == pytest.approx(expected, abs=1e-4), "the benchmark scores the model as it was trained"

    report = Report()
    packaged = packaging.package_stage(job_for(project, "package"), report)
    assert Artifact.objects.get(pk=packaged["bundle"]).status == "verified" and packaged["engine"] == "openvino"
    assert any("agree with the imported model" in line for line in report.lines)
    with zipfile.ZipFile(absolute(Artifact.objects.get(pk=packaged["bundle"]).path)) as bundle:
        assert json.loads(bundle.read("samples/expected.json"))["reference"] == "the imported model"
        readme = bundle.read("README.md").decode()
    assert "answers like the imported model did" in readme and "with those the imported model gave" in readme
    assert "answered by the imported model when the bundle was made" in readme and "PyTorch" not in readme


@pytest.mark.django_db
def test_the_api_takes_the_labels_one_a_line_as_the_page_does(their_onnx, settings, tmp_path):
    """curl -F "labels=$(cat labels.txt)" sends them as one field: they were refused as not the dataset's classes,
    with a message naming exactly the labels sent."""
    from rest_framework.test import APIClient

    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    client = APIClient()
    client.force_authenticate(team.members.get(username="alice"))
    answer = client.post("/api/model-imports/", {
        "project": project.pk, "file": SimpleUploadedFile("theirs.onnx", their_onnx.read_bytes()),
        "labels": "\n".join(project.dataset.class_names) + "\n", "input_size": INPUT_SIZE}, format="multipart")
    assert answer.status_code == 201, answer.json()
    assert TrainingRun.objects.get(project=project).architecture["class_names"] == project.dataset.class_names


@pytest.mark.django_db
def test_table_2_names_the_imported_models_baseline_by_what_it_runs(their_onnx, settings, tmp_path):
    """The live Table 2 of an imported ONNX model: its first row is that model in ONNX Runtime (it has no PyTorch
    weights), and the card says so; it said "PyTorch eager"."""
    from deployment.optimize import compare_stage

    settings.MEDIA_ROOT = tmp_path / "media"
    team = factories.team_with("Vision", alice="owner")
    project = factories.training_project(team)
    client = Client()
    client.force_login(team.members.get(username="alice"))
    done = client.post(reverse("deployment:model_import", args=[project.pk]), {
        "file": SimpleUploadedFile("theirs.onnx", their_onnx.read_bytes()), "labels": "\n".join(
            project.dataset.class_names), "input_size": INPUT_SIZE, "mean": "0.5, 0.5, 0.5", "std": "0.5 0.5 0.5"})
    assert done.status_code == 302
    project.refresh_from_db()
    project.options = {**project.options, "compare_engines": ["onnxruntime"]}
    project.save()
    report = Report()
    job = job_for(project, "compare")
    job.result = compare_stage(job, report)
    job.status = "succeeded"
    job.save()
    baseline = "Imported ONNX model (ONNX Runtime)"
    # exported for 16 px alone, it is compared at that size (not at twice it, as a model trained here is)
    assert [t["input_size"] for t in job.result["tables"]] == [INPUT_SIZE]
    rows = job.result["tables"][0]["rows"]
    assert rows[0]["runtime"] == baseline and rows[0]["speedup_cpu"] == 1.0
    # every engine row is built from the imported ONNX model (tracing the module that runs it in ONNX Runtime gave
    # a graph with no input, and the first engine row failed the stage)
    assert [(r["engine"], r["asked"]) for r in rows[1:]] == [("onnxruntime", p) for p in ("fp32", "fp16", "int8")]
    assert all(r.get("cpu_p10_ms") for r in rows[1:]) and rows[1]["delta"] == 0.0
    assert job.result["baseline"] == baseline and not any("PyTorch" in line for line in report.lines), report.lines
    assert report.lines[0].startswith("The paper's Table 2 on this server (") and f"): {baseline} against" in (
        report.lines[0])
    card = client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    card = card[card.index('id="stage-compare"'):]
    card = card[card.index('<div class="result">'):card.index("</figure>")]  # the result, not the stage's blurb
    assert f"<td>{INPUT_SIZE} px</td><td>{baseline}</td><td>fp32</td>" in card
    assert f": {baseline} against every engine" in card and "the model was imported at" in card
    assert f"Speed-up over {baseline} (CPU time, batch 1)" in card and "PyTorch" not in card
