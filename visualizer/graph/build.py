"""A graph → a PyTorch model again (a torch.fx GraphModule).

Layers keep their module paths, so the state-dict keys are the traced model's: the same weights give the same
outputs, and a trained edited network saves and loads like any other.
"""

import torch
from torch import fx, nn

from . import layers
from .infer import decode


class BuildError(ValueError):
    pass


def module_of(graph: dict) -> fx.GraphModule:
    """A freshly initialised model for a consistent graph (ValueError when shape inference found errors)."""
    if graph.get("errors"):
        first = graph["errors"][0]["message"]
        raise BuildError(f"The network does not fit together: {first}")
    fx_graph = fx.Graph()
    env: dict = {}
    modules: dict[str, nn.Module] = {}
    for node in graph["nodes"]:
        kind = node["kind"]
        if kind == "input":
            env[node["id"]] = fx_graph.placeholder("x")
            continue
        if kind == "output":
            fx_graph.output(decode(node["args"], env))
            continue
        args = tuple(decode(node.get("args", []), env))
        kwargs = decode(node.get("kwargs", {"dict": {}}), env)
        if kind == "module":
            if node["target"] not in modules:
                modules[node["target"]] = layers.construct(node["op"], node["params"])
            env[node["id"]] = fx_graph.call_module(node["target"], args, kwargs)
        elif kind == "function":
            env[node["id"]] = fx_graph.call_function(layers.FUNCTIONS[node["op"]], args, kwargs)
        elif kind == "method":
            env[node["id"]] = fx_graph.call_method(node["op"], args, kwargs)
        else:
            raise BuildError(f"{node['id']}: unknown node kind {kind!r}")
    fx_graph.lint()
    return fx.GraphModule(modules, fx_graph, class_name=_class_name(graph))


def _class_name(graph: dict) -> str:
    name = "".join(part.capitalize() for part in str(graph.get("name", "")).replace("-", "_").split("_"))
    return name if name.isidentifier() else "EditedNetwork"


def load_matching(model: nn.Module, state: dict) -> dict:
    """Copy every tensor whose key and shape match (an edited network keeps the rest of its start); returns what
    was loaded and what kept its fresh initialisation."""
    own = model.state_dict()
    loadable = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    model.load_state_dict(loadable, strict=False)
    return {"loaded": len(loadable), "fresh": sorted(k for k in own if k not in loadable)}


def same_outputs(a: nn.Module, b: nn.Module, input_size: int, *, atol: float = 1e-5) -> bool:
    x = torch.randn(2, 3, input_size, input_size, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        return torch.allclose(a.eval()(x), b.eval()(x), atol=atol)
