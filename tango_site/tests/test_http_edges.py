"""The ASGI application's own edges: static files and oversized bodies (issue 8, defect 6)."""

import json

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from tango_site.asgi import application


def http_scope(method, path, headers=()):
    return {"type": "http", "http_version": "1.1", "method": method, "path": path, "raw_path": path.encode(),
            "query_string": b"", "root_path": "", "scheme": "http", "server": ("testserver", 80),
            "client": ("127.0.0.1", 5000), "headers": [(b"host", b"testserver"), *headers]}


async def exchange(scope, bodies=(b"",)):
    """Send the body chunks (all but the last with more_body) and return (status, headers, body)."""
    talk = ApplicationCommunicator(application, scope)
    for i, chunk in enumerate(bodies):
        await talk.send_input({"type": "http.request", "body": chunk, "more_body": i < len(bodies) - 1})
    start = await talk.receive_output(timeout=20)
    body = b""
    while True:
        message = await talk.receive_output(timeout=20)
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    await talk.wait(timeout=5)
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/static/../manage.py", "/static/css/../../../manage.py", "/static/..//etc/passwd"])
def test_climbing_out_of_static_is_a_404_not_a_500(path):
    # Regression: SuspiciousFileOperation escaped Django's static handler as a 500.
    status, _, body = async_to_sync(exchange)(http_scope("GET", path))
    assert status == 404 and b"SECRET_KEY" not in body


def test_static_files_are_served_with_nosniff():
    status, headers, _ = async_to_sync(exchange)(http_scope("GET", "/static/css/tango.css"))
    assert (status, headers[b"x-content-type-options"]) == (200, b"nosniff")


@pytest.mark.parametrize(("path", "limit"), [
    ("/api/projects/1/weights/", "1000"), ("/projects/1/import-model/", "1000"), ("/api/model-imports/", "1000"),
    # Try it takes one image of at most 10 MB: a bigger body was read to the end (up to the 2 GB dataset limit).
    ("/projects/1/try/", "10485760"), ("/api/trials/", "10485760")])
def test_an_oversized_model_or_image_upload_is_refused_from_its_content_length(settings, path, limit):
    # Regression: the whole body was received and spooled to disk before the view said no (a model import: up to
    # the dataset limit, 2 GB, not the weights limit). Here no body is ever sent: reading one would hang until the
    # timeout.
    settings.TANGO_WEIGHTS_MAX_BYTES = 1000
    headers = [(b"content-length", str(10**9).encode()), (b"content-type", b"multipart/form-data; boundary=x")]
    talk = ApplicationCommunicator(application, http_scope("POST", path, headers))
    start = async_to_sync(talk.receive_output)(timeout=10)
    body = async_to_sync(talk.receive_output)(timeout=10)
    assert start["status"] == 413 and f"{limit}-byte limit".encode() in body["body"]


@pytest.mark.django_db(transaction=True)  # the sender is looked up on a thread of its own
def test_a_streamed_upload_without_length_is_cut_off_at_the_limit(settings, client):
    from projects.tests import factories

    settings.TANGO_WEIGHTS_MAX_BYTES = 1000
    client.force_login(factories.team_with("Alpha", alice="owner").members.get())  # who may upload, past the gate
    chunk = b"x" * 40_000  # two of these pass the limit and its 64 KiB allowance for the form around the file
    headers = [(b"content-type", b"multipart/form-data; boundary=x"), (b"transfer-encoding", b"chunked"),
               (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    async def two_chunks_only():
        talk = ApplicationCommunicator(application, http_scope("POST", "/projects/1/weights/", headers))
        await talk.send_input({"type": "http.request", "body": chunk, "more_body": True})
        await talk.send_input({"type": "http.request", "body": chunk, "more_body": True})
        start = await talk.receive_output(timeout=20)  # no third chunk: the answer must come without it
        body = await talk.receive_output(timeout=5)
        return start["status"], body["body"]

    status, body = async_to_sync(two_chunks_only)()
    assert status == 413 and b"limit" in body


UPLOAD_PAGES = ["/datasets/upload/", "/projects/new/", "/projects/1/weights/", "/projects/1/import-model/",
                "/projects/1/try/"]
UPLOAD_API = ["/api/datasets/", "/api/projects/1/weights/", "/api/model-imports/", "/api/trials/"]
# A body under every upload path's limit (Try it's is 10 MB), so that only the sender decides the answer.
SIZEABLE = [(b"content-length", b"8000000"), (b"content-type", b"multipart/form-data; boundary=x")]


async def answer_without_body(scope):
    """(status, headers, body) of an answer that must come before any body message is sent: were the body read,
    this would wait for it until the timeout."""
    talk = ApplicationCommunicator(application, scope)
    start = await talk.receive_output(timeout=20)
    body = await talk.receive_output(timeout=5)
    return start["status"], {k.lower(): v for k, v in start["headers"]}, body["body"]


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("path", UPLOAD_PAGES + UPLOAD_API)
def test_an_anonymous_upload_is_answered_before_its_body_is_read(settings, path):
    # Regression: Django's ASGI handler received the whole body (an anonymous 40 MB setup.exe: 7.6 s) into a
    # temporary file before the view's sign-in check sent the client away.
    from django.shortcuts import resolve_url

    status, headers, body = async_to_sync(answer_without_body)(http_scope("POST", path, SIZEABLE))
    assert headers[b"connection"] == b"close"
    if path.startswith("/api/"):
        assert (status, headers[b"www-authenticate"]) == (401, b"Token")
        assert json.loads(body) == {"detail": "Authentication credentials were not provided."}
    else:
        assert (status, headers[b"location"].decode()) == (302, f"{resolve_url(settings.LOGIN_URL)}?next={path}")


@pytest.mark.django_db(transaction=True)
def test_a_sender_who_edits_no_team_is_refused_before_the_body_and_an_editor_is_let_through(client):
    from projects.tests import factories
    from projects.tokens import api_token_create

    team = factories.team_with("Vision", alice="owner", carol="viewer")
    carol, alice = team.members.get(username="carol"), team.members.get(username="alice")
    client.force_login(carol)
    session = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    token = (b"authorization", f"Token {api_token_create(user=carol, name='ci')[1]}".encode())

    status, headers, body = async_to_sync(answer_without_body)(http_scope("POST", "/datasets/upload/",
                                                                          [*SIZEABLE, session]))
    assert status == 403 and b"403 Forbidden" in body and headers[b"connection"] == b"close"  # the site's 403 page
    for credentials in (session, token):
        status, _, body = async_to_sync(answer_without_body)(http_scope("POST", "/api/datasets/",
                                                                         [*SIZEABLE, credentials]))
        assert (status, json.loads(body)) == (403, {"detail": "You are not an editor or owner of any team."})
    bad_token = (b"authorization", b"Token not-a-key")
    status, _, body = async_to_sync(answer_without_body)(http_scope("POST", "/api/trials/", [*SIZEABLE, bad_token]))
    assert (status, json.loads(body)) == (401, {"detail": "Invalid token."})

    # An editor's upload goes on to the view, which reads the body (an empty form: the view's own answer).
    client.force_login(alice)
    editor = (b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())
    token = (b"authorization", f"Token {api_token_create(user=alice, name='ci')[1]}".encode())
    form = [(b"content-type", b"multipart/form-data; boundary=x")]
    status, _, body = async_to_sync(exchange)(http_scope("POST", "/api/datasets/", [*form, token]), [b"--x--\r\n"])
    assert status == 400 and b"file" in body
    status, _, body = async_to_sync(exchange)(http_scope("POST", "/datasets/upload/", [*form, editor]),
                                              [b"--x--\r\n"])
    assert status == 403 and b"CSRF" in body  # the view's CSRF check: the body was read, past the gate


@pytest.mark.parametrize(("path", "kind"), [("/datasets/upload/", b"text/html"),
                                            ("/api/datasets/", b"application/json")])
def test_an_upload_while_the_database_is_down_is_the_503_that_retries(monkeypatch, path, kind):
    from django.db import OperationalError

    from projects import uploads

    def database_down(request):
        raise OperationalError("connection refused")

    monkeypatch.setattr(uploads, "user_before_body", database_down)
    status, headers, _ = async_to_sync(answer_without_body)(http_scope("POST", path, SIZEABLE))
    assert (status, headers[b"retry-after"], headers[b"content-type"].split(b";")[0]) == (503, b"5", kind)


@pytest.mark.django_db
def test_an_unknown_api_path_answers_json():
    status, headers, body = async_to_sync(exchange)(http_scope("GET", "/api/no-such-thing/"))
    assert status == 404 and headers[b"content-type"] == b"application/json"


@pytest.mark.django_db(transaction=True)  # the request's database work runs on a thread of its own
def test_pages_and_the_api_answer_through_the_asgi_application_with_one_sync_chain(client):
    # tango_site.handler runs the middleware chain and the view in one thread hop: the chain must be sync (a
    # coroutine chain would hop back to the event loop inside it), and sessions, auth and team scoping still apply.
    import asyncio

    from projects.tests import factories
    from tango_site.asgi import django_asgi_app

    assert not asyncio.iscoroutinefunction(django_asgi_app._middleware_chain)
    alpha = factories.team_with("Alpha", alice="editor")
    mine = factories.project(alpha, "mine")
    theirs = factories.project(factories.team_with("Beta", bob="owner"), "theirs")
    client.force_login(alpha.memberships.get().user)
    cookie = [(b"cookie", f"sessionid={client.cookies['sessionid'].value}".encode())]

    status, _, body = async_to_sync(exchange)(http_scope("GET", "/", cookie))
    assert status == 200 and b"mine" in body and b"theirs" not in body
    status, headers, body = async_to_sync(exchange)(http_scope("GET", "/api/projects/", cookie))
    assert status == 200 and headers[b"content-type"] == b"application/json" and b'"mine"' in body
    assert async_to_sync(exchange)(http_scope("GET", f"/projects/{theirs.pk}/", cookie))[0] == 404
    assert async_to_sync(exchange)(http_scope("GET", f"/projects/{mine.pk}/", cookie))[0] == 200
    assert async_to_sync(exchange)(http_scope("GET", "/api/projects/"))[0] == 401  # anonymous
