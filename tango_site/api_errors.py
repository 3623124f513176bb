"""How errors become HTTP answers in the REST API (settings: REST_FRAMEWORK["EXCEPTION_HANDLER"], and the
handler403/handler404/handler500 of tango_site.urls for what never reaches a DRF view).

Services raise Django's ValidationError and JobNotAllowed; views stay thin and let them propagate here. Every
error under /api/ is JSON in one of two shapes, both in the OpenAPI schema (`add_error_responses`):
`{"detail": "..."}`, or for a 400 a map of field name to messages.
"""

import logging
import sys

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from django.http import JsonResponse
from django.views import defaults
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from projects.jobs.errors import JobNotAllowed, JobNotQueued

from .security import DB_DOWN

log = logging.getLogger(__name__)

SERVER_ERROR = "The server failed to answer this request; it has been logged."


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


class ServiceUnavailable(exceptions.APIException):
    status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    default_detail = "A service the portal needs is unavailable; try again shortly."
    default_code = "unavailable"


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(serializers.as_serializer_error(exc))
    elif isinstance(exc, JobNotAllowed):
        exc = Conflict(str(exc))
    elif isinstance(exc, JobNotQueued):
        exc = ServiceUnavailable(str(exc))
    elif isinstance(exc, DB_DOWN):
        exc = ServiceUnavailable("The database is unavailable for a moment; retry shortly.")
    elif isinstance(exc, ProtectedError):
        users = ", ".join(sorted({str(obj) for obj in exc.protected_objects})[:5])
        exc = Conflict(f"Still in use by: {users}.")
    response = drf_exception_handler(exc, context)
    if response is not None and response.status_code == status.HTTP_503_SERVICE_UNAVAILABLE:
        response["Retry-After"] = "5"
    if response is None:
        # Anything else is a bug or an outage: logged with its traceback, answered as JSON (not Django's HTML page).
        log.exception("Unhandled error in %s", context["view"].__class__.__name__, exc_info=exc)
        response = Response({"detail": SERVER_ERROR}, status=status.HTTP_500_INTERNAL_SERVER_ERROR)
    return response


def _is_api(request) -> bool:
    return request.path.startswith("/api/")


# Django's own 403 and 404 pages, without the @requires_csrf_token they are wrapped in: on a POST that wrapper checks
# the CSRF token, which reads request.POST, so refusing an upload before its body is read (projects.uploads) would
# have the error page parse the body and keep the file after all. The token stays available to a template: the
# middleware's process_request, which every request passes, sets it.
_page_not_found = defaults.page_not_found.__wrapped__
_permission_denied = defaults.permission_denied.__wrapped__


def not_found(request, exception=None):
    if _is_api(request):
        return JsonResponse({"detail": "No such API endpoint."}, status=404)
    return _page_not_found(request, exception)


def permission_denied(request, exception=None):
    return _permission_denied(request, exception)


def server_error(request):
    from .security import DB_DOWN, database_unavailable_response

    if isinstance(sys.exc_info()[1], DB_DOWN):  # handler500 runs inside Django's except block
        return database_unavailable_response(request)
    if _is_api(request):
        return JsonResponse({"detail": SERVER_ERROR}, status=500)
    return defaults.server_error(request)


# --- the schema --------------------------------------------------------------------------------------------------

_DETAIL = {"type": "object", "properties": {"detail": {"type": "string"}}, "required": ["detail"]}
_FIELD_ERRORS = {
    "type": "object",
    "description": "Messages by field name (non_field_errors for the whole request), or a detail.",
    "additionalProperties": {"anyOf": [{"type": "array", "items": {"type": "string"}}, {"type": "string"},
                                       {"type": "object"}]},
}
_ERRORS = {
    "400": ("The request is invalid; messages say why.", "ValidationError"),
    "401": ("Not signed in: send a session cookie or `Authorization: Token <key>`.", "Error"),
    "403": ("Signed in, but this role may not do this.", "Error"),
    "404": ("No such row in your teams (or no such endpoint).", "Error"),
    "405": ("The method is not allowed here.", "Error"),
    "413": ("The upload is over its size limit.", "Error"),
    "415": ("The request body's media type is not accepted here.", "Error"),
    "429": ("Too many requests (or failed sign-ins); retry later.", "Error"),
    "500": ("The server failed; logged.", "Error"),
    "503": ("A service the portal needs is down; retry shortly.", "Error"),
}


def add_error_responses(result, generator, request, public):
    """drf-spectacular postprocessing hook: document the error answers every operation can give."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    schemas["Error"] = _DETAIL
    schemas["ValidationError"] = _FIELD_ERRORS
    for operations in result.get("paths", {}).values():
        for operation in operations.values():
            responses = operation.setdefault("responses", {})
            for code, (description, schema) in _ERRORS.items():
                if code == "413" and "multipart/form-data" not in operation.get("requestBody", {}).get("content", {}):
                    continue
                responses.setdefault(code, {
                    "description": description,
                    "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema}"}}},
                })
    return result
