"""Refuse an uploaded file by its name and size while the request body is parsed, before anything keeps a byte of it.

A view's own checks come too late for this: by the time it reads request.FILES, Django's upload handlers have kept
each file, in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and past that in a temporary file (a 1 GB upload named
virus.exe was written out whole before the view said no). UploadGuard goes first in the request's handlers: a file
whose name it refuses never reaches the handlers after it, and one that grows past the limit is dropped as it
streams (those handlers close and delete what they held). The view reads why from upload_refusals(request).

The guard must be set before anything reads the body. CsrfViewMiddleware reads it (request.POST) before the view runs,
so a page that takes an upload is csrf_exempt and checks the token itself after setting the guard
(deployment.views.try_page shows the pattern); an API view sets it in initialize_request.
"""

from django.core.files.uploadhandler import FileUploadHandler, SkipFile


class UploadGuard(FileUploadHandler):
    """Refuses each file of the request whose name does not end with one of `suffixes` (None: any name) or whose
    size passes `limit`; passes the bytes of the others on to the next handler."""

    def __init__(self, request, *, limit: int, too_big: str, suffixes: tuple[str, ...] | None = None,
                 wrong_name: str = ""):
        super().__init__(request)
        self.limit, self.too_big, self.suffixes, self.wrong_name = limit, too_big, suffixes, wrong_name

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if self.suffixes is not None and not file_name.lower().endswith(self.suffixes):
            self.refuse(self.wrong_name)  # before the handlers after this one are told of the file

    def receive_data_chunk(self, raw_data, start):
        if start + len(raw_data) > self.limit:
            self.refuse(self.too_big)
        return raw_data

    def file_complete(self, file_size):
        return None  # the handlers after this one keep the file

    def refuse(self, message: str):
        if self.request is not None:
            self.request.upload_refusals = {**getattr(self.request, "upload_refusals", {}), self.field_name: message}
        raise SkipFile()


def guard_uploads(request, **guard) -> None:
    """Put an UploadGuard(**guard) before the request's upload handlers; call before anything reads the body."""
    request.upload_handlers = [UploadGuard(request, **guard), *request.upload_handlers]


def upload_refusals(request) -> dict[str, str]:
    """{field name: why its file was refused} for the files UploadGuard dropped from this request (a Django or a DRF
    request). The body is parsed first: an API view's body is read lazily, and the guard reports as it runs."""
    request.FILES  # noqa: B018 - the read that parses the body
    return getattr(request, "upload_refusals", {})
