"""Refuse an upload's body before it is read, not after: one too large, or one from a sender who may not upload.

Django's ASGI handler spools the whole body to disk before any middleware or view runs, so a view's size check
comes after a 1 GB weights file has been received and written, and its sign-in and role checks after an anonymous
client's 2 GB. This wrapper answers 413 from the Content-Length header alone, and for a body without one (chunked)
it stops reading at the limit. On a path that takes uploads it first asks who is sending, from the session cookie or
the API token (headers only): a sender who is not signed in, or who edits no team (the rule every upload view applies
before its body), is answered at once, as the view would answer, and the body is never read.
"""

import io
import json
import re

from channels.db import database_sync_to_async
from django.conf import settings

# Paths that take uploads, with the limit that bounds each; any other body is bounded by the dataset limit. A model
# import is a weights-sized file (it was bounded by the 2 GB dataset limit and spooled to disk before the view said
# no); Try it takes one image; the New project wizard's dataset step posts to its own page.
_MODELS = re.compile(r"^/(api/)?projects/\d+/weights/$|^/projects/\d+/import-model/$|^/api/model-imports/$")
_IMAGES = re.compile(r"^/projects/\d+/try/$|^/api/trials/$")
_DATASETS = re.compile(r"^/datasets/upload/$|^/projects/new/$|^/api/datasets/$")
_SLACK = 64 * 1024  # multipart boundaries and the form's other fields
_SENDS_BODY = {"POST", "PUT", "PATCH"}


def _image_limit() -> int:
    from deployment.trials import MAX_IMAGE_BYTES

    return MAX_IMAGE_BYTES


_UPLOADS = ((_MODELS, lambda: settings.TANGO_WEIGHTS_MAX_BYTES), (_IMAGES, _image_limit),
            (_DATASETS, lambda: settings.TANGO_UPLOAD_MAX_BYTES))


def upload_limit(path: str) -> int | None:
    """The body limit of a path that takes uploads; None for any other path."""
    for paths, limit in _UPLOADS:
        if paths.match(path):
            return limit() + _SLACK
    return None


def body_limit(path: str) -> int:
    return upload_limit(path) or settings.TANGO_UPLOAD_MAX_BYTES + _SLACK


class BodyLimit:
    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = body_limit(scope["path"])
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > limit:
            return await _too_large(scope, send, limit)
        if scope["method"] in _SENDS_BODY and upload_limit(scope["path"]) is not None:
            if (refusal := await _refuse_sender(scope)) is not None:
                return await _send_closing(send, *refusal)
        received = 0
        over = False
        started = False

        async def counted_receive():
            nonlocal received, over
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    over = True  # the app sees the client go away and stops reading
                    return {"type": "http.disconnect"}
            return message

        async def watched_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        await self.app(scope, counted_receive, watched_send)
        if over and not started:
            await _too_large(scope, send, limit)


async def _too_large(scope, send, limit: int) -> None:
    text = f"The upload is larger than the {limit - _SLACK}-byte limit for this page."
    if scope["path"].startswith("/api/"):
        body, kind = json.dumps({"detail": text}).encode(), b"application/json"
    else:
        body, kind = text.encode(), b"text/plain; charset=utf-8"
    await _send_closing(send, 413, [(b"content-type", kind)], body)


async def _send_closing(send, status: int, headers: list, body: bytes) -> None:
    """Answer and close the connection: the client stops sending a body nobody will read."""
    headers = [*headers, (b"content-length", str(len(body)).encode()), (b"connection", b"close")]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@database_sync_to_async  # the session and the token are looked up in the database (or the session cache)
def _refuse_sender(scope) -> tuple[int, list, bytes] | None:
    """(status, headers, body) for a sender who may upload nowhere, as the upload views answer one before reading
    the body; None for one who may upload to some team (the view still checks this project or team). The user is
    found as the views find it: Django's session and authentication middleware on the request's headers, then
    user_before_body with the authenticators of the page (the session) or of the API (token, then session)."""
    from django.contrib.auth.middleware import AuthenticationMiddleware
    from django.contrib.auth.views import redirect_to_login
    from django.contrib.sessions.middleware import SessionMiddleware
    from django.core.exceptions import PermissionDenied
    from django.core.handlers.asgi import ASGIRequest
    from django.core.handlers.exception import response_for_exception
    from rest_framework.authentication import SessionAuthentication
    from rest_framework.exceptions import APIException, NotAuthenticated
    from rest_framework.request import Request
    from rest_framework.settings import api_settings

    from projects.access import require_editor_somewhere
    from projects.uploads import user_before_body
    from tango_site.security import DB_DOWN, database_unavailable_response

    request = ASGIRequest(scope, io.BytesIO())  # headers only: no body is read
    SessionMiddleware(lambda r: None).process_request(request)
    AuthenticationMiddleware(lambda r: None).process_request(request)
    api = scope["path"].startswith("/api/")
    authenticators = [cls() for cls in api_settings.DEFAULT_AUTHENTICATION_CLASSES] if api \
        else [SessionAuthentication()]
    try:
        user = user_before_body(Request(request, authenticators=authenticators))
        if not user.is_authenticated:
            if not api:
                return _django_answer(redirect_to_login(request.get_full_path()))
            raise NotAuthenticated()
        require_editor_somewhere(user)
    except APIException as refused:  # as DRF answers it: 401 with the token challenge, or 403
        headers = [(b"content-type", b"application/json")]
        if refused.status_code == 401:
            headers.append((b"www-authenticate", authenticators[0].authenticate_header(request).encode()))
        return refused.status_code, headers, json.dumps({"detail": str(refused.detail)}).encode()
    except PermissionDenied as refused:
        if api:
            return 403, [(b"content-type", b"application/json")], json.dumps({"detail": str(refused)}).encode()
        return _django_answer(response_for_exception(request, refused))  # the site's 403 page
    except DB_DOWN:  # the 503 that retries, as DatabaseUnavailable answers every other request then
        return _django_answer(database_unavailable_response(request))
    return None


def _django_answer(response) -> tuple[int, list, bytes]:
    headers = [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in response.items()
               if k.lower() not in ("content-length", "connection")]  # _send_closing sets these
    return response.status_code, headers, response.content
