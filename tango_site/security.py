"""Security plumbing the settings point at: sign-in lockout answers, the client address behind a proxy, static
files that cannot be climbed out of, and the 500 page's settings filter."""

import logging
import math
import re

from django.conf import settings
from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
from django.core.exceptions import SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpResponse, JsonResponse
from django.shortcuts import render
from django.template.loader import render_to_string
from django.views.debug import SafeExceptionReporterFilter

DB_DOWN = (OperationalError, InterfaceError)
DB_DOWN_MESSAGE = "The database is unavailable for a moment; this page retries by itself."


def client_ip(request) -> str | None:
    """The address to throttle sign-ins by: behind TANGO_PROXY_COUNT proxies, the one the outermost proxy saw.

    Entries left of that one are written by the client and could be anything, so they are never trusted."""
    count = settings.TANGO_PROXY_COUNT
    forwarded = [part.strip() for part in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",") if part.strip()]
    if count and len(forwarded) >= count:
        return forwarded[-count]
    return request.META.get("REMOTE_ADDR")


def lockout_response(request, original_response=None, credentials=None):
    """django-axes' answer once a username and address are locked: JSON for the API, a page for people."""
    minutes = max(1, math.ceil(settings.AXES_COOLOFF_TIME.total_seconds() / 60))
    retry_after = str(int(settings.AXES_COOLOFF_TIME.total_seconds()))
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": f"Too many failed sign-ins; try again in {minutes} minutes."}, status=429)
    else:
        username = (credentials or {}).get("username") or request.POST.get("username", "")
        response = render(request, "registration/locked_out.html", {
            "username": username, "failure_limit": settings.AXES_FAILURE_LIMIT, "minutes": minutes,
        }, status=429)
    response["Retry-After"] = retry_after
    return response


class StaticFiles(ASGIStaticFilesHandler):
    """The portal serves its own static files (embedded mode has no web server in front).

    Django's handler answers only Http404 itself: a path that climbs out (`/static/..%2f`) raised
    SuspiciousFileOperation into a 500. Middleware does not run here, so nosniff is set by hand."""

    def serve(self, request):
        try:
            response = super().serve(request)
        except SuspiciousOperation:
            raise Http404("No such file.") from None
        response["X-Content-Type-Options"] = "nosniff"
        return response


class SettingsFilter(SafeExceptionReporterFilter):
    """Also hides settings holding URLs (DATABASE_URL, REDIS_URL, the broker's): they embed passwords."""

    hidden_settings = re.compile(
        "API|AUTH|TOKEN|KEY|SECRET|PASS|SIGNATURE|HTTP_COOKIE|URL|BROKER|CHANNEL_LAYERS|DATABASES", flags=re.I)


class DatabaseUnavailable:
    """While the database is down (restarting, failing over), answer 503 with Retry-After instead of a traceback.

    Django drops a broken connection at the end of the request, so the next request after the database is back
    simply works: nothing here needs resetting. DRF views get the same answer from tango_site.api_errors, and
    errors raised in other middleware (saving the session) from its handler500."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        return self.get_response(request)

    def process_exception(self, request, exception):
        if isinstance(exception, DB_DOWN):
            return database_unavailable_response(request)
        return None


def database_unavailable_response(request):
    logging.getLogger(__name__).warning("Database unavailable for %s %s", request.method, request.path)
    if request.path.startswith("/api/"):
        response = JsonResponse({"detail": DB_DOWN_MESSAGE}, status=503)
    else:
        response = HttpResponse(render_to_string("503.html", {"message": DB_DOWN_MESSAGE}), status=503)
    response["Retry-After"] = "5"
    return response
