"""Fixtures every app's tests share."""

import os

import pytest

CHROMIUM = "/usr/bin/chromium"  # Debian's; Playwright never downloads a browser here

# One thread for torch (and OpenMP, MKL, OpenBLAS under it) in the whole suite and in the processes it starts: on a
# two-core machine shared with other test runs, two intra-op threads spin against each other and a 2 s training run
# takes 30 s. Read when torch is first imported, which no module does before this file; it was set by the deployment
# and training tests' conftests, so projects/tests run alone went on two threads and in the whole suite on one.
for _name in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ[_name] = "1"


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


def pytest_collection_modifyitems(config, items):
    """The tests that start processes run last, in their modules' order: first those that start their own, then those
    that share the session's portal (below), so its worker and web server are started once, not once per module, and
    no live worker writes heartbeats into the database while other tests run (a worker that dies with its test module
    and one that outlives it read the same to every test). The sort is stable: a module's tests stay together."""
    def group(item):
        if item.get_closest_marker("integration") is None:
            return 0
        return 2 if "portal" in item.fixturenames else 1

    items.sort(key=group)
    shard = os.environ.get("TANGO_TEST_SHARD")  # "k/N", set by bin/test_shards.py (./tango test --shards N)
    if shard:
        _keep_shard(config, items, *map(int, shard.split("/")))


def _keep_shard(config, items, k: int, n: int) -> None:
    """Keeps the test modules of shard k of n, in the order above. A module's tests, with their module-scoped fixtures,
    stay in one process. Modules go to shards by the seconds a CI run measured (bin/test_seconds.json), slowest first,
    each to the shard with the fewest seconds so far: every n-th module left one shard 1,666 s against the other's 1,098
    when new modules shifted the slow ones onto one side."""
    modules = list(dict.fromkeys(item.nodeid.split("::")[0] for item in items))
    mine = set(shard_modules(modules, n)[k - 1])
    kept, dropped = [], []
    for item in items:
        (kept if item.nodeid.split("::")[0] in mine else dropped).append(item)
    if dropped:
        config.hook.pytest_deselected(items=dropped)
    items[:] = kept


def shard_modules(modules: list[str], n: int, seconds: dict | None = None) -> list[list[str]]:
    """The modules of each of n shards (longest-processing-time first; ties go to the earlier module and shard, so
    every shard's process computes the same split)."""
    if seconds is None:
        import json
        from pathlib import Path

        seconds = json.loads((Path(__file__).parent / "bin" / "test_seconds.json").read_text())
    weight = {m: seconds["modules"].get(m, seconds["default"]) for m in modules}
    shards, load = [[] for _ in range(n)], [0.0] * n
    for module in sorted(modules, key=lambda m: (-weight[m], modules.index(m))):
        lightest = load.index(min(load))
        shards[lightest].append(module)
        load[lightest] += weight[module]
    return shards


@pytest.fixture(scope="session")
def _portal_processes():
    processes = {}
    yield processes
    for name in ("web", "worker"):
        if name in processes:
            processes[name].kill()


@pytest.fixture(scope="module")
def portal(django_db_setup, django_db_blocker, tmp_path_factory, _portal_processes):
    """The web server and a Celery worker on the test database. Started once for the session, as these modules run
    together at the end; a module that found either dead (a test killed the worker, as a lost host) starts it again.
    Its profiles cached in memory (the recommend stage's) are the worker's own, as on a long-running install."""
    from projects.tests.live import purge_broker, start_web, start_worker

    logs = tmp_path_factory.mktemp("portal-logs")
    with django_db_blocker.unblock():
        purge_broker()
    processes = _portal_processes
    if "worker" not in processes or processes["worker"].proc.poll() is not None:
        processes["worker"] = start_worker(logs)
    if "web" not in processes or processes["web"].proc.poll() is not None:
        processes["web"], processes["url"] = start_web(logs)
    yield {"url": processes["url"], "worker": processes["worker"], "web": processes["web"], "logs": logs}


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


@pytest.fixture
def page(browser, request):
    """A page in a fresh browser context per test. A test module may set VIEWPORT ({"width", "height"}) and
    PAGE_TIMEOUT_MS (Playwright's default wait, 30 s, is short for pages that wait on a training job)."""
    viewport = getattr(request.module, "VIEWPORT", None)
    context = browser.new_context(**({"viewport": viewport} if viewport else {}))
    page = context.new_page()
    if timeout := getattr(request.module, "PAGE_TIMEOUT_MS", None):
        page.set_default_timeout(timeout)
    yield page
    context.close()


@pytest.fixture
def no_broker(monkeypatch):
    """Enqueued jobs stay in the database (no broker message): a test runs them itself (projects.tests.stage_runs)."""
    from projects.jobs import services as job_services

    monkeypatch.setattr(job_services, "_dispatch", lambda *args: None)
