"""Refuse an uploaded file by its name and size while the request body is parsed, before anything keeps a byte of it.

A view's own checks come too late for this: by the time it reads request.FILES, Django's upload handlers have kept
each file, in memory up to FILE_UPLOAD_MAX_MEMORY_SIZE and past that in a temporary file (a 1 GB upload named
virus.exe was written out whole before the view said no). UploadGuard goes first in the request's handlers: a file
whose name it refuses never reaches the handlers after it, and one that grows past the limit is dropped as it
streams (those handlers close and delete what they held). The view reads why from upload_refusals(request).

The guard must be set before anything reads the body. CsrfViewMiddleware reads it (request.POST) before the view runs,
so a page that takes an upload is wrapped in upload_page, which sets the guard and checks the CSRF token after it; an
API viewset takes UploadGuardedViewSet, which sets it in initialize_request.

Who may upload is settled before the body too (both of them ask `may_upload` first): a viewer's correctly named file
would pass the guard and be kept whole before the view's 403, so a refused sender's body is never read at all.
"""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.contrib.auth.models import AnonymousUser
from django.core.files.uploadhandler import FileUploadHandler, SkipFile
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from rest_framework.authentication import SessionAuthentication
from rest_framework.exceptions import NotAuthenticated


class UploadGuard(FileUploadHandler):
    """Refuses each file of the request whose name does not end with one of `suffixes` (None: any name) or whose
    size passes `limit`; passes the bytes of the others on to the next handler. `wrong_name` may name the file as
    {name}."""

    def __init__(self, request, *, limit: int, too_big: str, suffixes: tuple[str, ...] | None = None,
                 wrong_name: str = ""):
        super().__init__(request)
        self.limit, self.too_big, self.suffixes, self.wrong_name = limit, too_big, suffixes, wrong_name

    def new_file(self, field_name, file_name, *args, **kwargs):
        super().new_file(field_name, file_name, *args, **kwargs)
        if self.suffixes is not None and not file_name.lower().endswith(self.suffixes):
            # before the handlers after this one are told of the file
            self.refuse(self.wrong_name.format(name=file_name))

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


def upload_page(guard, *, may_upload):
    """Decorate a page view that takes an upload. On a POST, before anything reads the body: the sign-in,
    `may_upload(request.user, **url kwargs)` (raises Http404 or PermissionDenied for a sender who may not upload
    here), then `guard(request)`, which sets the UploadGuard; the CSRF token is checked after those (the page is
    csrf_exempt, as CsrfViewMiddleware would read the body first). The view reads refusals with upload_refusals."""
    def decorate(view):
        checked = csrf_protect(view)

        @csrf_exempt
        @login_required
        @wraps(view)
        def page(request, *args, **kwargs):
            if request.method == "POST":
                may_upload(request.user, **kwargs)
                guard(request)
            return checked(request, *args, **kwargs)

        return page

    return decorate


class UploadGuardedViewSet:
    """A DRF viewset mixin for an action that takes an upload (`upload_action`, on POST): `upload_guard(request)` is
    set in initialize_request, and `may_upload(user, **url kwargs)` runs first thing in initial(), before
    authentication (whose session CSRF check reads the body) and so before anything keeps a byte."""

    upload_action = "create"

    def upload_guard(self, request) -> None:
        raise NotImplementedError

    def may_upload(self, user, **kwargs) -> None:
        """Raise Http404 or PermissionDenied for a user who may not upload here."""
        raise NotImplementedError

    def _takes_upload(self, request) -> bool:
        return self.action == self.upload_action and request.method == "POST"

    def initialize_request(self, request, *args, **kwargs):
        drf_request = super().initialize_request(request, *args, **kwargs)  # sets self.action; reads no body
        if self._takes_upload(request):
            self.upload_guard(request)
        return drf_request

    def initial(self, request, *args, **kwargs):
        if self._takes_upload(request):
            user = user_before_body(request)
            if not user.is_authenticated:
                raise NotAuthenticated()
            self.may_upload(user, **kwargs)
        super().initial(request, *args, **kwargs)


def user_before_body(request):
    """Who a DRF request is from, found without reading its body: its authenticators in order, as DRF asks them,
    except that a session's user is taken from the session alone. SessionAuthentication's CSRF check (it reads
    request.POST) still runs afterwards, in DRF's own authentication, with the guard in place."""
    for authenticator in request.authenticators:
        if isinstance(authenticator, SessionAuthentication):
            user = getattr(request._request, "user", None)
            if user is not None and user.is_active:
                return user
        elif (found := authenticator.authenticate(request)) is not None:
            # As DRF's Request._authenticate keeps it, so DRF does not ask the authenticator again.
            request._authenticator = authenticator
            request.user, request.auth = found
            return request.user
    return AnonymousUser()
