"""How another app hands the train stage a network other than a zoo model, and rebuilds it after training.

The visualiser registers here from its AppConfig.ready() (training imports no app that edits networks):
- network_source_register(dotted): source(project, model_name) -> NetworkSource | None, asked by the train stage;
  the first source that answers decides what trains. None everywhere: the zoo model `model_name`.
- trained_network_register(dotted): loader(architecture: dict) -> nn.Module | None, a freshly built network for
  a TrainingRun's `architecture` (None when that run's network is not the loader's); its weights are then loaded.
Handlers are dotted paths, imported only when called (in the worker): the web process loads none of them.
"""

from collections.abc import Callable
from dataclasses import dataclass, field

from django.utils.module_loading import import_string


@dataclass(frozen=True)
class NetworkSource:
    label: str  # how the log names it: "ResNet-18, edited (version 2)"
    build: Callable | None  # classification: build(num_classes, input_size) -> a freshly initialised nn.Module
    about: dict = field(default_factory=dict)  # merged into TrainingRun.architecture (enough to rebuild it)
    spec: dict | None = None  # detection: the edited model dict (ultralytics' .yaml layout) to train instead


_sources: list[str] = []
_loaders: list[str] = []


def network_source_register(dotted: str) -> None:
    if dotted not in _sources:
        _sources.append(dotted)


def trained_network_register(dotted: str) -> None:
    if dotted not in _loaders:
        _loaders.append(dotted)


def network_source(project, model_name: str, report=None) -> NetworkSource | None:
    for dotted in _sources:
        source = import_string(dotted)(project, model_name, report)
        if source is not None:
            return source
    return None


def trained_model(run):
    """A finished TrainingRun's network with its trained weights, on CPU, in eval mode."""
    import torch

    from projects.jobs.storage import absolute

    from .engine.zoo import load_trained_model

    weights = absolute(run.weights_path)
    for dotted in _loaders:
        model = import_string(dotted)(run.architecture)
        if model is not None:
            model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
            return model.eval()
    return load_trained_model(run.model_name, num_classes=run.architecture["num_classes"],
                              input_size=run.architecture["input_size"], weights_path=weights)
