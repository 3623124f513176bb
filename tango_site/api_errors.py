"""How domain exceptions become HTTP answers in the REST API (settings: REST_FRAMEWORK["EXCEPTION_HANDLER"]).

Services raise Django's ValidationError and JobNotAllowed; views stay thin and let them propagate here.
"""

from django.core.exceptions import ValidationError as DjangoValidationError
from django.db.models import ProtectedError
from rest_framework import exceptions, serializers, status
from rest_framework.views import exception_handler as drf_exception_handler

from projects.jobs.errors import JobNotAllowed


class Conflict(exceptions.APIException):
    status_code = status.HTTP_409_CONFLICT
    default_detail = "The request conflicts with the current state of the resource."
    default_code = "conflict"


def exception_handler(exc, context):
    if isinstance(exc, DjangoValidationError):
        exc = exceptions.ValidationError(serializers.as_serializer_error(exc))
    elif isinstance(exc, JobNotAllowed):
        exc = Conflict(str(exc))
    elif isinstance(exc, ProtectedError):
        users = ", ".join(sorted({str(obj) for obj in exc.protected_objects})[:5])
        exc = Conflict(f"Still in use by: {users}.")
    return drf_exception_handler(exc, context)
