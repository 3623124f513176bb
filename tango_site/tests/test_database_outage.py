"""Postgres down for a few seconds: pages and the API answer 503 (not a traceback) and recover by themselves.

The database is a cluster this test creates (initdb in a temporary folder, its own port), never the machine's.
"""

import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[2]
PG_BIN = Path("/usr/lib/postgresql")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pg_tool(name: str) -> str:
    found = sorted(PG_BIN.glob(f"*/bin/{name}")) or [Path(shutil.which(name) or name)]
    return str(found[-1])


class Cluster:
    """A throwaway Postgres: trust auth on 127.0.0.1 only; run as the postgres account when we are root."""

    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="tango-pg-", dir="/tmp"))
        self.port = free_port()
        self.data = self.root / "data"
        if os.geteuid() == 0:
            shutil.chown(self.root, "postgres")
        self.root.chmod(0o700)
        self._as_owner(pg_tool("initdb"), "-D", str(self.data), "-U", "postgres", "--auth=trust", "-E", "UTF8")

    def _as_owner(self, *command, check=True):
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *command], capture_output=True, text=True, timeout=120, check=check)

    def start(self):
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._as_owner(pg_tool("pg_ctl"), "-D", str(self.data), "-o", options, "-l", str(self.root / "log"),
                       "-w", "start")

    def stop(self):
        self._as_owner(pg_tool("pg_ctl"), "-D", str(self.data), "-m", "fast", "-w", "stop", check=False)

    def url(self, db="postgres"):
        return f"postgres://postgres@127.0.0.1:{self.port}/{db}"

    def remove(self):
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)


@pytest.fixture(scope="module")
def portal_on_own_postgres(tmp_path_factory):
    if not shutil.which("runuser") and os.geteuid() == 0:
        pytest.skip("needs runuser to start Postgres as its own account")
    cluster = Cluster()
    cluster.start()
    data = tmp_path_factory.mktemp("outage-data")
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "TANGO_SQLITE_NAME")}
    env.update(DATABASE_URL=cluster.url(), SECRET_KEY=secrets.token_urlsafe(50), DEBUG="0", TANGO_DATA_DIR=str(data),
               ALLOWED_HOSTS="127.0.0.1", PYTHONUNBUFFERED="1", TANGO_ADMIN_PASSWORD="pw-admin-outage")
    setup = ("import django; django.setup()\n"
             "from django.core.management import call_command\n"
             "from django.contrib.auth import get_user_model\n"
             "call_command('migrate', verbosity=0)\n"
             "get_user_model().objects.create_user('alice', password='pw-alice-outage')\n")
    subprocess.run([sys.executable, "-c", setup], cwd=ROOT, env={**env, "DJANGO_SETTINGS_MODULE":
                   "tango_site.settings"}, check=True, capture_output=True, timeout=300)
    port = free_port()
    log = (data / "web.log").open("w")
    # The web server as deployed: two processes, each pooling its connections (the pool must notice the restart).
    web = subprocess.Popen([sys.executable, "-m", "tango_site.webserver", "--host", "127.0.0.1", "--port", str(port),
                            "--workers", "2"], cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
                           start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            requests.get(url + "/accounts/login/", timeout=5)
            break
        except requests.RequestException:
            time.sleep(0.3)
    try:
        yield {"url": url, "cluster": cluster}
    finally:
        os.killpg(web.pid, signal.SIGKILL)
        web.wait()
        cluster.remove()


def signed_in(url) -> requests.Session:
    session = requests.Session()
    page = session.get(url + "/accounts/login/").text
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)
    response = session.post(url + "/accounts/login/", {"username": "alice", "password": "pw-alice-outage",
                                                       "csrfmiddlewaretoken": token}, allow_redirects=False)
    assert response.status_code == 302
    return session


def test_pages_and_api_answer_503_while_postgres_is_down_and_recover(portal_on_own_postgres):
    url, cluster = portal_on_own_postgres["url"], portal_on_own_postgres["cluster"]
    browser = signed_in(url)
    api = requests.Session()
    token = api.post(url + "/api/auth/token/", {"username": "alice", "password": "pw-alice-outage"}).json()["token"]
    api.headers["Authorization"] = f"Token {token}"
    assert browser.get(url + "/").status_code == 200 and api.get(url + "/api/projects/").status_code == 200

    cluster.stop()
    try:
        page = browser.get(url + "/")
        assert page.status_code == 503 and "Back in a moment" in page.text and "Traceback" not in page.text
        assert page.headers["Retry-After"] == "5"
        answer = api.get(url + "/api/projects/")
        assert answer.status_code == 503 and answer.json()["detail"].startswith("The database is unavailable")
    finally:
        cluster.start()

    deadline = time.monotonic() + 15
    codes = []
    while time.monotonic() < deadline:
        codes = [browser.get(url + "/").status_code, api.get(url + "/api/projects/").status_code]
        if codes == [200, 200]:
            break
        time.sleep(0.5)
    assert codes == [200, 200]
