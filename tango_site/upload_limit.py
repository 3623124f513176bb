"""Refuse an oversized request body before it is read, not after.

Django's ASGI handler spools the whole body to disk before any view runs, so a view's size check comes after a
1 GB weights file has been received and written. This wrapper answers 413 from the Content-Length header alone,
and for a body without one (chunked) it stops reading at the limit.
"""

import json
import re

from django.conf import settings

# Paths that take uploads, with the limit that bounds each; any other body is bounded by the dataset limit. A model
# import is a weights-sized file (it was bounded by the 2 GB dataset limit and spooled to disk before the view said
# no); Try it takes one image.
_MODELS = re.compile(r"^/(api/)?projects/\d+/weights/$|^/projects/\d+/import-model/$|^/api/model-imports/$")
_IMAGES = re.compile(r"^/projects/\d+/try/$|^/api/trials/$")
_SLACK = 64 * 1024  # multipart boundaries and the form's other fields


def body_limit(path: str) -> int:
    if _MODELS.match(path):
        return settings.TANGO_WEIGHTS_MAX_BYTES + _SLACK
    if _IMAGES.match(path):
        from deployment.trials import MAX_IMAGE_BYTES

        return MAX_IMAGE_BYTES + _SLACK
    return settings.TANGO_UPLOAD_MAX_BYTES + _SLACK


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
    await send({"type": "http.response.start", "status": 413,
                "headers": [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})
