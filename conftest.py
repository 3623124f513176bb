"""Suite-wide test setup.

Transactional tests (django_db(transaction=True): real workers, servers, websockets) end by flushing every table,
which also drops rows that data migrations seeded (the device catalog, the paper's Table 1). Tests that run after
one would then see an empty catalog. serialized_rollback restores those rows after each flush.
"""

import pytest


def pytest_collection_modifyitems(items):
    for item in items:
        marker = item.get_closest_marker("django_db")
        if marker and marker.kwargs.get("transaction") and "serialized_rollback" not in marker.kwargs:
            item.add_marker(pytest.mark.django_db(*marker.args, **{**marker.kwargs, "serialized_rollback": True}))
