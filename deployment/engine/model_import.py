"""Bring your own model: check an uploaded ONNX or TorchScript file, and turn it into the ONNX model the pipeline
optimises, benchmarks and packages. Django-free.

Checks: one self-contained file under the size limit; ONNX that onnx's checker accepts, at an opset ONNX Runtime
runs, with one float image input N x 3 x S x S (S the input size stated, or free) and an output whose shape fits
the task and the labels (classification: N x classes; detection: N x (4 + classes) x anchors); TorchScript that
torch.jit.load reads (TorchScript's own loader: no Python pickle runs; a plain `torch.save` pickle is refused), whose
code calls no op that reaches files, sockets or extensions (check_torchscript_archive reads it first). The model is
run once on this server before it is accepted; a classifier is then scored on the project's validation images
(validation_scores), so a model at chance level (labels in another order, another mean/std or input size) is
flagged at once rather than after the stages that follow.

The model's own normalisation (mean/std) is folded into the ONNX model: the pipeline feeds every model the images
prepared one way (ImageNet mean/std for classification, [0, 1] for detection), so the imported model gets one
Mul and one Add in front that turn those into what it was trained on.
"""

import ast
import functools
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

from tango_common.images import IMAGENET_MEAN, IMAGENET_STD
from tango_common.processes import one_thread_child_env
from tango_common.sandbox import SandboxError, confine, python_runtime_paths

MIN_OPSET, MAX_OPSET = 7, 21
INPUT_NAME = "images"
MAX_CODE_BYTES = 32 * 2**20  # a TorchScript model's code is kilobytes; more is not read
OP_NAMESPACES = ("aten", "prim")
# The check of an upload runs in a child process under these bounds (checked_in_child)
CHECK_MEMORY_BYTES = 6 * 2**30  # a 1 GB model (the weights limit) loaded, exported and run fits
CHECK_TIMEOUT_S = 300.0
VALIDATION_SECONDS = 60.0  # of that, at most this long scoring a classifier on the validation split


class ImportRefused(ValueError):
    """The file is not a model the pipeline can take; the message says why, in words for the page."""


def _dims(value_info) -> list:
    return [d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
            for d in value_info.type.tensor_type.shape.dim]


def _fixed(dim) -> int | None:
    return dim if isinstance(dim, int) and dim > 0 else None


def inspect_onnx(path: Path, *, task: str, input_size: int, num_classes: int) -> dict:
    """What the file is (opset, input and output shapes), or ImportRefused saying what is wrong."""
    import onnx

    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ImportRefused(f"This is not a valid ONNX model: {str(exc).splitlines()[0][:300]}") from None
    # Before the checker: it resolves an external tensor's `location` against the working directory, so a Constant
    # naming a file there passed it, and a later load read it (or failed with a 500). One file, no external data.
    if any(t.data_location == onnx.TensorProto.EXTERNAL for t in _tensors(model)):
        raise ImportRefused("The model keeps its weights in a separate file; export it as one .onnx file.")
    try:
        onnx.checker.check_model(model)
    except Exception as exc:
        raise ImportRefused(f"This is not a valid ONNX model: {str(exc).splitlines()[0][:300]}") from None
    opset = max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ImportRefused(f"The model uses ONNX opset {opset}; this portal takes opsets {MIN_OPSET} to "
                            f"{MAX_OPSET}. Export it again with another opset.")
    weights = {t.name for t in model.graph.initializer}
    inputs = [i for i in model.graph.input if i.name not in weights]
    if len(inputs) != 1:
        raise ImportRefused(f"The model has {len(inputs)} inputs; it must take one image batch.")
    if inputs[0].type.tensor_type.elem_type != onnx.TensorProto.FLOAT:
        raise ImportRefused("The model's input must be float32 (N x 3 x H x W).")
    dims = _dims(inputs[0])
    if len(dims) != 4 or _fixed(dims[1]) != 3:
        raise ImportRefused(f"The model's input is {_shape(dims)}; it must be N x 3 x H x W (RGB, channels first).")
    for side in dims[2:]:
        if _fixed(side) is not None and side != input_size:
            raise ImportRefused(f"The model's input is {_shape(dims)} but the input size given is {input_size}.")
    if len(model.graph.output) < 1:
        raise ImportRefused("The model has no output.")
    out = _dims(model.graph.output[0])
    _check_output(out, task=task, num_classes=num_classes)
    return {"format": "onnx", "opset": opset, "input": _shape(dims), "output": _shape(out),
            "input_name": inputs[0].name, "producer": f"{model.producer_name} {model.producer_version}".strip()}


def _tensors(model):
    """Every tensor of the model: initializers (sparse too) and node attributes, in subgraphs and functions."""
    def of_graph(graph):
        yield from graph.initializer
        for sparse in graph.sparse_initializer:
            yield from (sparse.values, sparse.indices)
        yield from of_nodes(graph.node)

    def of_nodes(nodes):
        for node in nodes:
            for attr in node.attribute:
                yield from [attr.t, *attr.tensors, attr.sparse_tensor.values, attr.sparse_tensor.indices]
                for sparse in attr.sparse_tensors:
                    yield from (sparse.values, sparse.indices)
                for graph in [attr.g, *attr.graphs]:
                    yield from of_graph(graph)

    yield from of_graph(model.graph)
    for function in model.functions:
        yield from of_nodes(function.node)


def _shape(dims) -> str:
    return " x ".join(str(d) if d is not None else "?" for d in dims)


def _check_output(out: list, *, task: str, num_classes: int) -> None:
    if task == "detection":
        if len(out) != 3 or (_fixed(out[1]) is not None and out[1] != 4 + num_classes):
            raise ImportRefused(f"A detector's output must be N x (4 + {num_classes} classes) x anchors; this one is "
                                f"{_shape(out)}.")
    elif len(out) != 2 or (_fixed(out[1]) is not None and out[1] != num_classes):
        raise ImportRefused(f"A classifier's output must be N x {num_classes} (one score per label); this one is "
                            f"{_shape(out)}.")


def check_torchscript_archive(path: Path) -> None:
    """A TorchScript file is a zip with the model's code in it; a plain torch.save pickle (which would run code when
    loaded) is not, and is refused without being opened by torch.

    TorchScript is a program too: its code (code/*.py, compiled by torch.jit.load, which also runs __setstate__)
    may call any registered op, and a few reach outside the tensors: `torch.from_file` reads any file the server can
    read, `torch.save` writes any file it can write (a model that overwrites the portal's own code), TorchBind
    classes (`torch.classes.*`: c10d's FileStore, TCPStore) open files and sockets, and ops of namespaces other than
    aten and prim are extensions. A model needs none of them, so the code is read here (as text, before torch sees
    the file) and a model that names one is refused."""
    if not zipfile.is_zipfile(path):
        raise ImportRefused("This is not a TorchScript file (torch.jit.save); pickled models are not accepted.")
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
        code = [m for m in members if "/code/" in m.filename and m.filename.endswith(".py")]
        if not code:
            raise ImportRefused("The archive has no TorchScript code: save the model with torch.jit.save (a "
                                "torch.save pickle is not accepted).")
        if sum(m.file_size for m in code) > MAX_CODE_BYTES:  # declared sizes: a zip bomb is refused unread
            raise ImportRefused(f"The model's TorchScript code is over {MAX_CODE_BYTES // 2**20} MB.")
        for member in code:
            _check_torchscript_code(member.filename, archive.read(member)[:MAX_CODE_BYTES])
        for member in members:  # the pickles torch.jit.load restores may name a TorchBind class directly
            if member.filename.endswith(".pkl") and member.file_size <= MAX_CODE_BYTES \
                    and b"torch.classes" in archive.read(member):
                raise ImportRefused(f"{member.filename} restores a TorchBind class (torch.classes): such models "
                                    "are not accepted.")


@functools.cache  # read once per process: ~0.2 s a time over thousands of schemas, and an archive has hundreds of files
def _file_ops() -> frozenset[str]:
    """Names of the registered ops that take a file name or path: from the op schemas, so a new torch's new ones
    are covered (torch 2.x: aten::from_file, aten::save)."""
    import torch

    return frozenset(schema.name.split("::")[-1] for schema in torch._C._jit_get_all_schemas()
                     if any("str" in str(arg.type) and any(k in arg.name.lower() for k in ("file", "path", "dir"))
                            for arg in schema.arguments))


def _check_torchscript_code(name: str, source: bytes) -> None:
    """Refuse TorchScript code that names a file op (as torch.X, ops.aten.X, a tensor method or getattr's
    string), a TorchBind class, or an op outside aten and prim."""
    try:
        tree = ast.parse(source.decode("utf-8"))
    except (SyntaxError, UnicodeDecodeError, ValueError):
        raise ImportRefused(f"{name} is not TorchScript code torch.jit.save writes.") from None
    words = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            words.add(node.attr)
            namespace = _dotted(node.value) in ("ops", "torch.ops") and node.attr
            if namespace and namespace not in OP_NAMESPACES:  # (a class path, __torch__.torchvision.ops.misc, is not)
                raise ImportRefused(f"The model calls ops.{namespace}: only aten and prim ops are accepted.")
        elif isinstance(node, ast.Name):
            words.add(node.id)
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            words.add(node.value)
    if "classes" in words:
        raise ImportRefused("The model uses a TorchBind class (torch.classes): such models are not accepted.")
    named = sorted(words & _file_ops())
    if named:
        raise ImportRefused(f"The model's code calls {', '.join(named)}, which reads or writes files on the server: "
                            "such models are not accepted.")


def _dotted(node) -> str:
    """torch.ops for the expression torch.ops; "" for anything that is not a plain dotted name."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        base = _dotted(node.value)
        return f"{base}.{node.attr}" if base else ""
    return ""


def _normaliser(task: str, mean, std) -> tuple[np.ndarray, np.ndarray]:
    """(scale, shift) per channel that turn the pipeline's input into the model's: x_model = x * scale + shift."""
    mean, std = np.asarray(mean, np.float32), np.asarray(std, np.float32)
    if task == "detection":  # the pipeline feeds [0, 1]
        return 1 / std, -mean / std
    base_mean, base_std = np.asarray(IMAGENET_MEAN, np.float32), np.asarray(IMAGENET_STD, np.float32)
    return base_std / std, (base_mean - mean) / std


def fold_normalisation_onnx(source: Path, out: Path, *, task: str, mean, std) -> Path:
    """A copy of the ONNX model that takes the pipeline's input (named "images") and normalises it as the model
    expects, with a free batch dimension."""
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(source), load_external_data=False)  # inspect_onnx refused external data; never read any
    weights = {t.name for t in model.graph.initializer}
    graph_input = next(i for i in model.graph.input if i.name not in weights)
    original = graph_input.name
    scale, shift = _normaliser(task, mean, std)
    identity = np.allclose(scale, 1) and np.allclose(shift, 0)
    feed = "tango_normalised" if not identity else original
    for node in model.graph.node:
        node.input[:] = [feed if name == original else name for name in node.input]
    for output in model.graph.output:  # a graph whose output is its input (never useful, but keep it valid)
        if output.name == original:
            output.name = feed
    nodes = []
    if not identity:
        model.graph.initializer.extend([numpy_helper.from_array(scale.reshape(1, 3, 1, 1), "tango_scale"),
                                        numpy_helper.from_array(shift.reshape(1, 3, 1, 1), "tango_shift")])
        nodes = [helper.make_node("Mul", [INPUT_NAME, "tango_scale"], ["tango_scaled"]),
                 helper.make_node("Add", ["tango_scaled", "tango_shift"], [feed])]
    elif original != INPUT_NAME:
        nodes = [helper.make_node("Identity", [INPUT_NAME], [feed])]
    if nodes:
        new_nodes = nodes + list(model.graph.node)
        del model.graph.node[:]
        model.graph.node.extend(new_nodes)
    graph_input.name = INPUT_NAME
    graph_input.type.tensor_type.shape.dim[0].dim_param = "N"
    onnx.checker.check_model(model)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    onnx.save(model, str(out))
    return out


def run_onnx_once(path: Path, *, input_size: int, task: str, num_classes: int) -> dict:
    """Load the model in ONNX Runtime and run it on two images: it must run, give finite numbers, fit the task."""
    import onnxruntime as ort

    try:
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        batch = np.random.default_rng(0).random((2, 3, input_size, input_size), dtype=np.float32)
        output = np.asarray(session.run(None, {session.get_inputs()[0].name: batch})[0])
    except Exception as exc:
        raise ImportRefused(f"ONNX Runtime could not run the model on a batch of two images (its batch dimension "
                            f"must be free): {str(exc).splitlines()[0][:300]}") from None
    if not np.isfinite(output).all():
        raise ImportRefused("The model runs but gives NaN or infinite values.")
    _check_output(list(output.shape), task=task, num_classes=num_classes)
    return {"ran": True, "output_shape": list(output.shape), "runtime": f"onnxruntime {ort.__version__}"}


def torchscript_to_onnx(source: Path, out: Path, *, task: str, input_size: int, num_classes: int, mean,
                        std, read_code_first: bool = True) -> tuple[Path, dict]:
    """Load the TorchScript model (torch.jit.load, once check_torchscript_archive has read its code), check it, and
    export it with its normalisation folded in as the pipeline's ONNX model. Returns the ONNX path and what was
    checked. read_code_first=False skips the reading of its code: only the tests of the sandbox behind it do."""
    import torch

    if read_code_first:
        check_torchscript_archive(source)
    try:
        module = torch.jit.load(str(source), map_location="cpu").eval()
        example = torch.rand(2, 3, input_size, input_size)
        with torch.inference_mode():
            output = module(example)
    except Exception as exc:
        raise ImportRefused(f"torch.jit.load could not load or run the model: {_reason(exc)}") from None
    if isinstance(output, (list, tuple)):
        output = output[0]
    _check_output(list(output.shape), task=task, num_classes=num_classes)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    plain = out.with_name(out.stem + "-as-exported.onnx")
    try:  # the TorchScript module as it is (its own input), then the normalisation folded in as for an ONNX import
        torch.onnx.export(module, (example[:1],), str(plain), input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "N"}, "output": {0: "N"}}, opset_version=17, dynamo=False)
        fold_normalisation_onnx(plain, out, task=task, mean=mean, std=std)
    except Exception as exc:
        raise ImportRefused(f"The TorchScript model could not be exported to ONNX: {str(exc).splitlines()[0][:300]}") \
            from None
    finally:
        plain.unlink(missing_ok=True)
    return out, {"format": "torchscript", "output": _shape(list(output.shape)), "torch": torch.__version__}


def _reason(exc: Exception) -> str:
    """The line of a torch error that says what went wrong: a TorchScript interpreter error starts with a header and
    the code's traceback, and ends with the cause."""
    lines = [line for line in str(exc).splitlines() if line.strip()] or [type(exc).__name__]
    reason = lines[-1] if lines[0].startswith("The following operation failed") else lines[0]
    if "Permission denied" in reason:
        reason += (" (the check runs sandboxed: the model may read no file but itself and write none, so a model "
                   "that reaches for the server's files fails here)")
    return reason[:400]


def torchscript_reference(path: Path, *, task: str, mean, std):
    """The imported TorchScript model behind the pipeline's input (normalisation in front), as a torch module."""
    import torch

    check_torchscript_archive(path)
    module = torch.jit.load(str(path), map_location="cpu").eval()
    scale, shift = (torch.from_numpy(a.reshape(1, 3, 1, 1)) for a in _normaliser(task, mean, std))

    class Normalised(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.inner = module
            self.register_buffer("scale", scale)
            self.register_buffer("shift", shift)

        def forward(self, x):
            y = self.inner(x * self.scale + self.shift)
            return y[0] if isinstance(y, (list, tuple)) else y

    return Normalised().eval()


def fixed_side(path: Path) -> int | None:
    """The input size an ONNX model is fixed to (its height), or None where it takes any."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    weights = {t.name for t in model.graph.initializer}
    dims = _dims(next(i for i in model.graph.input if i.name not in weights))
    return _fixed(dims[2]) if len(dims) == 4 else None


def onnx_module(path: Path):
    """The imported ONNX model behind a torch module's call (it runs on ONNX Runtime): what the accuracy guard
    evaluates as the reference an imported model's converted forms are held to. Not traceable: the PyTorch engine
    cannot be built from it."""
    import onnxruntime as ort
    import torch

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name

    class OnnxModule(torch.nn.Module):
        imported_onnx = True

        def forward(self, x):
            return torch.from_numpy(session.run(None, {name: x.detach().cpu().numpy()})[0])

    return OnnxModule().eval()


def validation_scores(path: Path, samples, *, input_size: int, num_classes: int, split: str,
                      time_budget_s: float = VALIDATION_SECONDS) -> dict:
    """A classifier's top-1 on labelled images (path, class index), fed as the pipeline feeds it (ImageNet-
    normalised; the model's own normalisation is folded in), and its confusion counts (rows: the class, columns: the
    output that won), from which a wrong label order can be read. Images past the time budget are left out (the
    count says how many were scored)."""
    import time

    import onnxruntime as ort

    from tango_common.images import preprocess_image

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    name = session.get_inputs()[0].name
    confusion = np.zeros((num_classes, num_classes), dtype=int)
    deadline = time.monotonic() + time_budget_s
    for image, label in samples:
        if time.monotonic() > deadline:
            break
        output = np.asarray(session.run(None, {name: preprocess_image(image, input_size)[None]})[0])
        confusion[int(label), int(output.reshape(-1).argmax())] += 1
    scored = int(confusion.sum())
    return {"split": split, "n_images": scored, "n_available": len(samples),
            "top1": round(100 * np.trace(confusion) / scored, 2) if scored else None,
            "chance": round(100 / num_classes, 2), "num_classes": num_classes, "confusion": confusion.tolist()}


def checked(source: Path, out: Path, *, fmt: str, task: str, input_size: int, num_classes: int, mean,
            std, validation=None, split: str = "val", read_code_first: bool = True) -> dict:
    """The whole check of an upload: what it is, its normalisation folded in (out: the pipeline's ONNX model) and
    one run; a classifier is also scored on `validation` ((image path, class index) pairs), which never refuses it.
    Raises ImportRefused."""
    if fmt == "onnx":
        checks = inspect_onnx(source, task=task, input_size=input_size, num_classes=num_classes)
        fold_normalisation_onnx(source, out, task=task, mean=mean, std=std)
    else:
        out, checks = torchscript_to_onnx(source, out, task=task, input_size=input_size, num_classes=num_classes,
                                          mean=mean, std=std, read_code_first=read_code_first)
    checks["run"] = run_onnx_once(out, input_size=input_size, task=task, num_classes=num_classes)
    if validation and task != "detection":
        checks["validation"] = validation_scores(out, validation, input_size=input_size, num_classes=num_classes,
                                                 split=split)
    return checks


def checked_in_child(source: Path, out: Path, *, memory_bytes: int | None = None, timeout_s: float | None = None,
                     **options) -> dict:
    """checked() in a child process with its memory and time bounded and, where the kernel has Landlock, its files
    and network confined (tango_common.sandbox): it reads only the Python runtime, the upload and the validation
    images, writes only a scratch folder made for it here (the ONNX model it writes there is moved to `out`), and
    opens no TCP connection. An uploaded model is somebody else's program: a ConstantOfShape of 50 GB, a Loop of a
    billion turns or a file that crashes a parser took the web process (which ran the check) down with it, or held
    it for ever; an op the static check of TorchScript code misses could read the server's secrets or database, or
    overwrite its code. checks["sandbox"] says what was enforced. Raises ImportRefused."""
    memory_bytes = memory_bytes or CHECK_MEMORY_BYTES
    timeout_s = timeout_s or CHECK_TIMEOUT_S

    def bounded():  # in the child, before it runs anything: its heap (malloc, numpy, onnxruntime arenas) is capped
        resource.setrlimit(resource.RLIMIT_DATA, (memory_bytes, memory_bytes))

    scratch = Path(tempfile.mkdtemp(prefix="tango-import-check-"))
    try:
        images = [str(image) for image, _ in options.get("validation") or ()]
        sandbox = {"read_only": [*map(str, python_runtime_paths()), str(source), *images],
                   "read_write": [str(scratch), "/dev/null"]}
        request = json.dumps({"source": str(source), "out": str(scratch / Path(out).name), "sandbox": sandbox,
                              **options})
        # one thread: a thread's stack counts in the memory cap; temporary files go to the scratch folder
        env = {**one_thread_child_env(), "TMPDIR": str(scratch), "PYTHONDONTWRITEBYTECODE": "1"}
        try:
            child = subprocess.run([sys.executable, "-m", "deployment.engine.model_import", request], env=env,
                                   cwd=scratch, preexec_fn=bounded, capture_output=True, timeout=timeout_s)
        except subprocess.TimeoutExpired:
            raise ImportRefused(f"Checking the model took over {timeout_s:.0f} s; it must run once in well under "
                                "that.") from None
        answer = (child.stdout.decode(errors="replace").strip().splitlines() or [""])[-1]
        try:
            answer = json.loads(answer)
        except ValueError:
            answer = None
        if child.returncode != 0 or not isinstance(answer, dict):
            raise ImportRefused(f"Checking the model stopped (exit {child.returncode}): it needs more than "
                                f"{memory_bytes // 2**20} MB of memory to run once, or crashed the runtime.")
        if "refused" in answer:
            raise ImportRefused(answer["refused"])
        Path(out).parent.mkdir(parents=True, exist_ok=True)
        shutil.move(scratch / Path(out).name, out)
        return answer["checks"]
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def _main(request: str) -> int:
    options = json.loads(request)
    paths = options.pop("sandbox")
    try:  # first, before the upload is opened: from here on the model's code runs confined
        sandbox = confine([Path(p) for p in paths["read_only"]], [Path(p) for p in paths["read_write"]])
    except SandboxError as exc:  # Landlock is there but refused: never run the model unconfined instead
        print(json.dumps({"refused": f"The server could not sandbox the check of the model ({exc}); it was not "
                                     "run. Tell the portal's administrator."}))
        return 0
    try:
        checks = checked(Path(options.pop("source")), Path(options.pop("out")), **options)
    except ImportRefused as exc:
        print(json.dumps({"refused": str(exc)}))
    except MemoryError:
        return 3
    else:
        print(json.dumps({"checks": {**checks, "sandbox": sandbox}}))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1]))
