"""Fixtures every app's tests share."""

import pytest


@pytest.fixture(autouse=True)
def _catalog_for_transactional_tests(request):
    """pytest-django empties every table after a transactional test, the device catalog the migrations seeded
    included; a transactional test starts with the catalog a fresh install has, whatever ran before it."""
    marker = request.node.get_closest_marker("django_db")
    if marker is None or not marker.kwargs.get("transaction"):
        return
    request.getfixturevalue("transactional_db")
    from projects.tests import factories

    factories.seeded_catalog()
