"""The target-device catalog as projects sees it. The recommender owns the catalog (its Device model, its order,
how a device card looks); a Project only points at a device (`Project.device`, a foreign key named by string).

projects imports nothing from recommender. The two things its pages need beyond the foreign key come through
this port, which the recommender fills from its AppConfig.ready() with device_catalog_register():
- `ordered(devices)`: devices in the catalog's display order (the wizard's cards);
- `card_template`: the template that draws one `device` (the wizard's cards);
- `pick_preview(**answers)`: optional, what the wizard's Review step shows for the model the recommender would
  pick (answers: device, task, engine, precision, input_size, latency_budget_ms, memory_limit_mb, dataset, team):
  a PickPreview, its line and its warnings (no model fits the budget, …);
- `grouped(devices)`: optional, the devices in labelled groups ("Jetson", "Phones", …) for the wizard's cards;
- `record_benchmark(**figures)`: optional, stores a latency/accuracy the benchmark stage measured on this server as
  the catalog's benchmark record (engine, precision, model_name, num_classes, input_size, latency_ms, memory_mb,
  accuracy, team, project, details), so the recommender learns from it.
Rows are read through the foreign key's own model (device_model()), so no app's model is imported here.
"""

from collections.abc import Callable, Iterable
from dataclasses import dataclass

from django.core.exceptions import ImproperlyConfigured
from django.db.models import QuerySet


@dataclass(frozen=True)
class PickPreview:
    line: str  # "Ranking: ResNet-18 (predicted 12.3 ms, …). Paper rules: ResNet-34."
    warnings: tuple[str, ...] = ()  # what the user should know before creating: "no model fits 5 ms …"


@dataclass(frozen=True)
class DeviceCatalog:
    ordered: Callable[[Iterable], list]
    card_template: str
    pick_preview: Callable[..., PickPreview] | None = None
    grouped: Callable[[Iterable], list[tuple[str, list]]] | None = None
    record_benchmark: Callable[..., object] | None = None

    def groups(self, devices: Iterable) -> list[tuple[str, list]]:
        """(label, devices) in display order; one unlabelled group when the catalog does not group."""
        return self.grouped(devices) if self.grouped else [("", self.ordered(devices))]


_catalog: DeviceCatalog | None = None


def device_catalog_register(catalog: DeviceCatalog) -> None:
    global _catalog
    _catalog = catalog


def device_catalog() -> DeviceCatalog:
    if _catalog is None:
        raise ImproperlyConfigured("No app registered the device catalog: the recommender does, from its "
                                   "AppConfig.ready(); is it in INSTALLED_APPS?")
    return _catalog


def device_model():
    """The model Project.device points at."""
    from .models import Project

    return Project._meta.get_field("device").related_model


def active_devices() -> QuerySet:
    """Devices a new project may target: the catalog's active rows."""
    return device_model().objects.filter(is_active=True)
