"""Fixtures every app's tests share."""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here


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


@pytest.fixture(scope="module")
def portal(django_db_setup, django_db_blocker, tmp_path_factory):
    """daphne and a Celery worker on the test database, for the tests of one module."""
    from projects.tests.live import purge_broker, start_web, start_worker

    logs = tmp_path_factory.mktemp("portal-logs")
    with django_db_blocker.unblock():
        purge_broker()
    worker = start_worker(logs)
    try:
        web, url = start_web(logs)
    except Exception:
        worker.kill()
        raise
    yield {"url": url, "worker": worker, "web": web, "logs": logs}
    web.kill()
    worker.kill()


@pytest.fixture(scope="module")
def browser():
    # Playwright's sync API runs an event loop in this thread; the test's own ORM calls are still synchronous.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "1"
    if not os.path.exists(CHROMIUM):
        pytest.skip("Debian's chromium is not installed (./tango test installs it)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield browser
        browser.close()
