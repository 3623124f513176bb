"""Suite-wide test setup.

Transactional tests (django_db(transaction=True): real workers, servers, websockets) end by flushing every table,
which also drops the rows data migrations seeded: the device catalog and the paper's Table 1 on it. Every test
after the first such flush would see an empty catalog (and the recommend stage fails: no paper model on any
device). So transactional tests put the seed back first, with the migrations' own functions.
(serialized_rollback would do it too, but it collides with the content types that other flushes re-create.)
"""

from importlib import import_module

import pytest

SEEDS = [("recommender.migrations.0002_seed_devices", "seed_catalog"), ("recommender.migrations.0004_seed_table1",
                                                                      "seed")]


@pytest.fixture(autouse=True)
def _migration_seed_restored(request):
    marker = request.node.get_closest_marker("django_db")
    if not (marker and marker.kwargs.get("transaction")):
        return
    request.getfixturevalue("transactional_db")
    from django.apps import apps

    if apps.get_model("recommender", "Device").objects.filter(paper_classification_model__gt="").exists():
        return
    for module, function in SEEDS:
        getattr(import_module(module), function)(apps, None)
