"""Schema-driven fuzzing of the REST API (schemathesis) as an editor: no 5xx, every answer as the schema says.

Capped by examples per operation, with a fixed seed (derandomize): the same requests every run, and a bounded
cost. (schemathesis' time limit would repeat generation until the time is spent.)
"""

import pytest
import schemathesis
from django.core.wsgi import get_wsgi_application
from drf_spectacular.generators import SchemaGenerator
from hypothesis import HealthCheck, Phase, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from projects.tokens import api_token_create

EXAMPLES_PER_OPERATION = 8
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


def run_operation(operation, app, headers) -> str | None:
    """Run the operation's generated cases; the first failure hypothesis finds (shrunk), or None."""

    @settings(max_examples=EXAMPLES_PER_OPERATION, derandomize=True, deadline=None, database=None,
              phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))
    @given(operation.as_strategy())
    def one(case):
        case.validate_response(case.call(app=app, headers=headers), checks=CHECKS)

    try:
        one()
    except Exception as exc:  # every operation's failure in one report, not only the first
        return f"{operation.label}: {str(exc)[:1500]}"
    return None


@pytest.mark.django_db(transaction=True)
def test_the_api_answers_every_generated_request_as_its_schema_says(world):
    _, key = api_token_create(user=world.users["bob"], name="fuzz")
    schema = schemathesis.openapi.from_dict(SchemaGenerator().get_schema(request=None, public=True))
    app = get_wsgi_application()
    headers = {"Authorization": f"Token {key}"}
    failures = [run_operation(result.ok(), app, headers) for result in schema.get_all_operations()]
    assert not any(failures), "\n\n".join(f for f in failures if f)
