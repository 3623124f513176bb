"""Against the real web server (uvicorn, as deployed): an upload from a sender who may upload nowhere is answered
while the client has sent only the start of its body, and the server keeps nothing of it; an owner's upload still
goes through end to end."""

import io
import json
import os
import select
import socket
import time
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from projects.datasets.tests.factories import classification_entries, write_zip
from projects.models import Dataset
from projects.tests import factories
from projects.tests.live import start_web
from projects.tokens import api_token_create

pytestmark = [pytest.mark.integration, pytest.mark.django_db(transaction=True)]

BODY_BYTES = 40 * 1024 * 1024  # under the dataset and weights limits: only the sender decides the answer
CHUNK = 64 * 1024


@pytest.fixture(scope="module")
def web(django_db_setup, tmp_path_factory):  # the test database first: the server is pointed at it
    """A web server of its own, whose temporary files (Django spools a large body to one) go to a folder we watch."""
    tmp = tmp_path_factory.mktemp("web-tmp")
    server, url = start_web(tmp_path_factory.mktemp("web-logs"), TMPDIR=str(tmp), TANGO_WEB_WORKERS="1")
    yield {"url": url, "tmp": tmp, "pid": server.proc.pid}
    server.kill()


def temp_files_held(web) -> list[str]:
    """The files under the server's TMPDIR that its processes hold open: a spooled body is unlinked as it is made
    (it never shows in a listing) but stays open while the body is received."""
    held = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            if os.getpgid(int(proc.name)) != web["pid"]:  # start_web's process group: the server and its children
                continue
            held += [link for fd in (proc / "fd").iterdir() if (link := os.readlink(fd)).startswith(str(web["tmp"]))]
        except (ProcessLookupError, FileNotFoundError, PermissionError):
            continue
    return held


def post_streaming(web, path: str, headers: dict[str, str] | None = None) -> tuple[bytes, int, list[str]]:
    """POST a BODY_BYTES multipart body in CHUNK pieces as fast as the connection takes them, watching for an answer
    between pieces. Returns (the answer's head, how many body bytes had been sent when it came, the temporary files
    the server held at that moment)."""
    address = urlsplit(web["url"])
    head = {"Host": address.netloc, "Content-Type": "multipart/form-data; boundary=x",
            "Content-Length": str(BODY_BYTES), **(headers or {})}
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall((f"POST {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in head.items()) + "\r\n")
                     .encode())
        sock.setblocking(False)
        sent, chunk, deadline = 0, b"x" * CHUNK, time.monotonic() + 60
        while time.monotonic() < deadline:
            readable, writable, _ = select.select([sock], [sock] if sent < BODY_BYTES else [], [], 1)
            if readable:
                held = temp_files_held(web)
                answer = b""
                while b"\r\n\r\n" not in answer:
                    select.select([sock], [], [], 5)
                    answer += sock.recv(65536)
                return answer.split(b"\r\n\r\n")[0], sent, held
            if writable:
                try:
                    sent += sock.send(chunk[: BODY_BYTES - sent])
                except (BlockingIOError, ConnectionError):
                    pass
    raise AssertionError(f"no answer within 60 s; {sent} bytes sent")


@pytest.mark.parametrize(("path", "answer"), [
    ("/datasets/upload/", b"HTTP/1.1 302"), ("/api/datasets/", b"HTTP/1.1 401"),
    ("/api/model-imports/", b"HTTP/1.1 401")])
def test_an_anonymous_upload_is_answered_before_its_body_is_sent(web, path, answer):
    # Regression: an anonymous 40 MB setup.exe posted to /datasets/upload/ was received in full (7.6 s), into a
    # temporary file, before the redirect to sign in.
    head, sent, held = post_streaming(web, path)
    assert head.startswith(answer) and b"connection: close" in head.lower()
    # Socket buffers take a few MB before the server reads anything; the body itself was never read.
    assert sent < BODY_BYTES // 4, f"{sent} of {BODY_BYTES} bytes sent before the answer"
    assert held == [] and list(web["tmp"].iterdir()) == []


def test_a_viewer_is_answered_before_the_body_and_an_owner_uploads_end_to_end(web):
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    alice, carol = team.members.get(username="alice"), team.members.get(username="carol")

    head, sent, held = post_streaming(web, "/api/datasets/",
                                      {"Authorization": f"Token {api_token_create(user=carol, name='ci')[1]}"})
    assert head.startswith(b"HTTP/1.1 403") and sent < BODY_BYTES // 4 and held == []

    import httpx

    archive = io.BytesIO()
    write_zip(archive, classification_entries())
    answer = httpx.post(f"{web['url']}/api/datasets/", timeout=60,
                        headers={"Authorization": f"Token {api_token_create(user=alice, name='ci')[1]}"},
                        data={"team": team.pk, "name": "pets", "task": "classification"},
                        files={"file": ("pets.zip", archive.getvalue(), "application/zip")})
    assert answer.status_code == 201, answer.text
    dataset = Dataset.objects.get(pk=json.loads(answer.text)["id"])
    assert (dataset.name, dataset.created_by, dataset.num_images > 0) == ("pets", alice, True)
