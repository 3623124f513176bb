"""The pipeline's stages, in order. Each stage's runner is `run(job, report) -> dict` in its own app.

Runners are named by dotted path so this module imports no ML code: the web process never loads torch.
"""

from dataclasses import dataclass
from importlib import import_module


@dataclass(frozen=True)
class Stage:
    key: str
    label: str
    requires: tuple[str, ...]
    queue: str
    runner: str
    description: str

    def run(self, job, report) -> dict:
        module, _, name = self.runner.rpartition(".")
        return getattr(import_module(module), name)(job, report)


STAGES: tuple[Stage, ...] = (
    Stage("recommend", "Recommend", (), "cpu", "recommender.services.recommend_stage",
          "Pick a model family and complexity that fit the target device."),
    Stage("train", "Train", ("recommend",), "gpu", "training.services.train_stage",
          "Train the recommended model on the dataset."),
    Stage("convert", "Optimize & convert", ("train",), "cpu", "deployment.services.convert_stage",
          "Export for the target engine and check the outputs against PyTorch."),
    Stage("benchmark", "Benchmark", ("convert",), "cpu", "deployment.services.benchmark_stage",
          "Measure latency and accuracy of every artifact."),
    Stage("package", "Package", ("benchmark",), "cpu", "deployment.services.package_stage",
          "Bundle the model, labels, preprocessing and an inference script."),
)
STAGE_BY_KEY = {s.key: s for s in STAGES}
STAGE_CHOICES = [(s.key, s.label) for s in STAGES]


def next_stage(key: str) -> Stage | None:
    keys = [s.key for s in STAGES]
    index = keys.index(key) + 1
    return STAGES[index] if index < len(STAGES) else None
