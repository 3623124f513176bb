"""The visualiser's Django shell around visualizer.graph: the project's network as a graph, edits previewed with
their costs on the project's target device (the recommender's latency and memory models), versions saved, the
`network` stage, and the train stage handed the chosen version (through training.hooks).

Graphs are built on PyTorch's meta device: the editor's requests import torch (lazily, on the first one) but
never allocate a weight.
"""

import functools
import json

from django.db import transaction
from django.db.models import Max

from projects.jobs.errors import StageError
from projects.jobs.selectors import latest_succeeded
from projects.models import Task

from .models import Architecture

MAX_EDITS = 500


class NetworkError(ValueError):
    """What the user asked cannot be done; the message says why."""


def base_model_for(project) -> str:
    """The zoo model the project trains: the one picked on the project, else the recommendation's."""
    if project.task == Task.DETECTION:
        from training.detection import detection_model_name

        try:
            return detection_model_name(project)
        except StageError as exc:
            raise NetworkError(f"{exc} The editor starts from the model the project will train.") from None
    if chosen := project.options.get("model"):
        return chosen
    try:
        model = latest_succeeded(project, "recommend").result.get("model")
    except StageError:
        model = None
    if not model:
        raise NetworkError("Run the recommend stage first (or pick a model on the project page): the editor starts "
                           "from the model the project will train.")
    return model


def num_classes_for(project) -> int:
    if project.task == Task.DETECTION:
        return max(1, len(project.dataset.class_names))
    return max(2, len(project.dataset.class_names))


def zoo_names() -> list[str]:
    from training.engine.yolo.zoo import detection_model_names
    from training.engine.zoo import model_names

    return model_names() + detection_model_names()


def _yolo_build(spec: dict):
    """ultralytics' own parser builds the layers of a model dict (input channels inferred row by row)."""
    import copy

    from ultralytics.nn.tasks import parse_model

    return parse_model(copy.deepcopy(spec), ch=3, verbose=False)[0]


@functools.lru_cache(maxsize=16)
def _base_graph_json(model_name: str, num_classes: int, input_size: int) -> str:
    import torch

    from training.engine.yolo.zoo import LABELS, model_dict
    from training.engine.zoo import build_model

    from .graph.trace import graph_of
    from .graph.yolo import yolo_graph

    if model_name in LABELS:
        return json.dumps(yolo_graph(model_dict(model_name, num_classes), _yolo_build, input_size, name=model_name))
    with torch.device("meta"):
        model = build_model(model_name, num_classes=num_classes, input_size=input_size)
    return json.dumps(graph_of(model, input_size, name=model_name, num_classes=num_classes))


def _is_subnet(model_name: str) -> bool:
    """A subnet the supernet search chose (`ofa-w…-d…-e…-k…`): not listed in the zoo, rebuilt from its name."""
    from training.engine.supernet import parse_subnet_name
    from training.engine.zoo import SUBNET_FAMILY

    if not model_name.startswith(SUBNET_FAMILY + "-"):
        return False
    try:
        parse_subnet_name(model_name, input_size=8)
    except ValueError:
        return False
    return True


def base_graph(model_name: str, *, num_classes: int, input_size: int) -> dict:
    if model_name not in zoo_names() and not _is_subnet(model_name):
        raise NetworkError(f"{model_name!r} is not a zoo model or a searched subnet; known: "
                           f"{', '.join(zoo_names())}.")
    return json.loads(_base_graph_json(model_name, num_classes, input_size))


def edited_graph(*, project, base_model: str, edits) -> tuple[dict, dict]:
    """(base graph, edited graph) for the project's input size and classes."""
    from .graph.edits import EditError, apply
    from .graph.yolo import YoloEditError, yolo_apply

    if not isinstance(edits, list) or len(edits) > MAX_EDITS:
        raise NetworkError(f"edits must be a list of at most {MAX_EDITS} edits.")
    base = base_graph(base_model, num_classes=num_classes_for(project), input_size=project.input_size)
    try:
        if base.get("family") == "yolo":
            return base, yolo_apply(base, edits, _yolo_build)
        return base, apply(base, edits)
    except (EditError, YoloEditError) as exc:
        raise NetworkError(str(exc)) from None


def predicted_costs(project, graph: dict) -> dict:
    """Parameters and FLOPs, and (for a network that fits together) latency and memory on the project's device,
    engine and precision, as the recommender predicts them, against the budget."""
    out = {"params": graph["totals"]["params"], "flops": graph["totals"]["flops"],
           "budget_ms": project.latency_budget_ms,
           "memory_limit_mb": project.memory_limit_mb or project.device.memory_mb,
           "device": project.device.name, "engine": project.engine, "precision": project.precision}
    if graph["errors"]:
        return {**out, "latency_ms": None, "memory_mb": None, "fits": None}
    from recommender.engine.costs import Costs
    from recommender.services import latency_model_for, memory_model_for

    from .graph.costs import graph_costs

    # The recommender's profile figures, read off the shapes inference found (a detector's row by row, cached per
    # row): tested equal to recommender.profiling.profile_model of the built network.
    costs = Costs(**graph_costs(graph))
    scope = {"device": project.device, "engine": project.engine, "precision": project.precision,
             "team": project.team}
    latency = latency_model_for(**scope)
    latency_ms = latency.predict_ms(costs)
    memory_mb = memory_model_for(**scope).predict_mb(costs)
    fits = (not out["budget_ms"] or latency_ms <= out["budget_ms"]) and memory_mb <= out["memory_limit_mb"]
    return {**out, "latency_ms": round(latency_ms, 3), "memory_mb": round(memory_mb, 1), "fits": fits,
            "confidence": latency.confidence()}


def network_preview(*, project, base_model: str | None = None, edits=()) -> dict:
    """What the editor shows after each edit: the graph, what does not fit, what the engine cannot run, the costs
    and how they moved from the unedited model."""
    from .graph.checks import engine_flags
    from .graph.diff import diff
    from .graph.layers import PALETTE
    from .graph.yolo import ROW_PALETTE

    base_model = base_model or base_model_for(project)
    base, graph = edited_graph(project=project, base_model=base_model, edits=list(edits))
    chosen = project.options.get("architecture")
    return {
        "project": project.pk, "base_model": base_model, "graph": graph, "errors": graph["errors"],
        "flags": engine_flags(graph, project.engine), "costs": predicted_costs(project, graph),
        "base_costs": predicted_costs(project, base), "changes": diff(base, graph)["lines"],
        "palette": list(ROW_PALETTE) if graph.get("family") == "yolo" else PALETTE,
        "chosen": chosen,
    }


@transaction.atomic
def architecture_save(*, project, user, base_model: str, edits, note: str = "") -> Architecture:
    """Save the edited network as the project's next version and make it the one the train stage trains."""
    preview = network_preview(project=project, base_model=base_model, edits=edits)
    if preview["errors"]:
        raise NetworkError(f"The network does not fit together: {preview['errors'][0]['message']}. Fix it first.")
    latest = Architecture.objects.select_for_update().filter(project=project).aggregate(v=Max("version"))["v"]
    costs = preview["costs"]
    architecture = Architecture.objects.create(
        project=project, version=(latest or 0) + 1, base_model=base_model, input_size=project.input_size,
        num_classes=num_classes_for(project), edits=list(edits), graph=preview["graph"], note=note[:200],
        created_by=user if user is not None and user.is_authenticated else None,
        summary={"costs": costs, "base_costs": preview["base_costs"], "changes": preview["changes"],
                 "flags": preview["flags"]})
    architecture_choose(project=project, architecture=architecture)
    return architecture


def architecture_choose(*, project, architecture: Architecture | None) -> None:
    """Train this version (None: the unedited zoo model)."""
    options = {k: v for k, v in project.options.items() if k != "architecture"}
    if architecture is not None:
        if architecture.project_id != project.pk:
            raise NetworkError("That network belongs to another project.")
        options["architecture"] = architecture.pk
    project.options = options
    project.save(update_fields=["options", "updated_at"])


def chosen_architecture(project) -> Architecture | None:
    pk = project.options.get("architecture")
    return Architecture.objects.filter(project=project, pk=pk).first() if pk else None


# --- training (through training.hooks) -------------------------------------------------------------------------


def build_edited(graph: dict, base_model: str, num_classes: int, input_size: int):
    """A fresh edited network: every layer the edits left alone starts as the zoo model would (its
    initialisation), the edited ones as PyTorch initialises them."""
    from training.engine.zoo import build_model

    from .graph.build import load_matching, module_of

    if num_classes != graph["num_classes"] or input_size != graph["input_size"]:
        raise StageError(f"The saved network is for {graph['num_classes']} classes at {graph['input_size']} px; "
                         f"the dataset has {num_classes} classes at {input_size} px. Save it again in the editor.")
    model = module_of(graph)
    load_matching(model, build_model(base_model, num_classes=num_classes, input_size=input_size).state_dict())
    return model


def training_network(project, model_name: str, report=None):
    """training.hooks' network source: the project's chosen version, when it starts from the model to train."""
    from training.hooks import NetworkSource

    architecture = chosen_architecture(project)
    if architecture is None:
        return None
    say = report or (lambda *args, **kwargs: None)
    if architecture.base_model != model_name:
        say(f"The saved network version {architecture.version} starts from {architecture.base_model}, but this run "
            f"trains {model_name}: training the zoo model.")
        return None
    graph, base = architecture.graph, architecture.base_model
    changes = architecture.summary.get("changes", [])
    about = {"network": {"architecture": architecture.pk, "version": architecture.version, "graph": graph}}
    say(f"Network version {architecture.version} from the editor: {len(changes)} change(s) to {base}"
        + (f" ({'; '.join(changes[:4])}{'; …' if len(changes) > 4 else ''})" if changes else "") + ".")
    label = f"{base}, edited (network version {architecture.version})"
    if graph.get("family") == "yolo":  # ultralytics trains the edited model dict, written as a .yaml
        return NetworkSource(label=label, build=None, spec=graph["spec"], about=about)
    return NetworkSource(
        label=label, build=lambda num_classes, input_size: build_edited(graph, base, num_classes, input_size),
        about=about)


def trained_network(architecture: dict):
    """training.hooks' loader: the edited network a TrainingRun trained, rebuilt from its graph."""
    network = architecture.get("network")
    if not network or network["graph"].get("family") == "yolo":  # a detector's checkpoint holds its own model
        return None
    from .graph.build import module_of

    return module_of(network["graph"])


# --- the network stage ----------------------------------------------------------------------------------------


def network_stage(job, report) -> dict:
    """Check the network the train stage will train: it fits together, what it costs on the device, what the
    engine cannot run."""
    project = job.project
    try:
        architecture = chosen_architecture(project)
        base_model = architecture.base_model if architecture else base_model_for(project)
        preview = network_preview(project=project, base_model=base_model,
                                  edits=architecture.edits if architecture else [])
    except NetworkError as exc:
        raise StageError(str(exc)) from None
    graph, costs = preview["graph"], preview["costs"]
    what = f"network version {architecture.version} ({base_model}, edited)" if architecture else \
        f"{base_model} as the zoo builds it (no edited version chosen)"
    report(f"Checking {what}: {len(graph['nodes'])} nodes, {len(graph['blocks'])} blocks.", progress=20)
    for line in preview["changes"]:
        report(f"  {line}")
    if preview["errors"]:
        raise StageError(f"The network does not fit together: {preview['errors'][0]['message']}")
    report(f"{costs['params'] / 1e6:.2f} M parameters, {costs['flops'] / 1e9:.3f} GFLOPs.", progress=60)
    report(f"Predicted on {costs['device']} ({costs['engine']}, {costs['precision']}): {costs['latency_ms']:.2f} ms "
           f"(budget {costs['budget_ms']:g} ms), {costs['memory_mb']:.0f} MiB; {costs['confidence']}.", progress=80)
    for flag in preview["flags"]:
        report(f"  {flag['level']}: {flag['message']}")
    if not preview["flags"]:
        report(f"{project.engine} runs every layer.")
    return {"model": base_model, "version": architecture.version if architecture else None,
            "architecture": architecture.pk if architecture else None, "costs": costs,
            "base_costs": preview["base_costs"], "changes": preview["changes"], "flags": preview["flags"],
            "blocks": len(graph["blocks"]), "nodes": len(graph["nodes"])}
