"""Signing in to the API (session or token) and the OpenAPI schema."""

import json
import re

import pytest
import yaml
from django.core.management import call_command
from drf_spectacular.validation import validate_schema
from rest_framework.test import APIClient


def test_a_token_is_issued_for_a_username_and_password(world):
    response = APIClient().post("/api/auth/token/", {"username": "carol", "password": "pw-carol"}, format="json")
    assert response.status_code == 200
    assert world.users["carol"].api_tokens.get().prefix == response.data["token"][:8]


def test_a_wrong_password_gets_no_token(world):
    response = APIClient().post("/api/auth/token/", {"username": "carol", "password": "guess"}, format="json")
    assert response.status_code == 400


def test_the_token_authenticates_requests(world):
    token = APIClient().post("/api/auth/token/", {"username": "carol", "password": "pw-carol"}).data["token"]
    client = APIClient(HTTP_AUTHORIZATION=f"Token {token}")
    assert [t["name"] for t in client.get("/api/teams/").data["results"]] == ["Vision"]
    assert client.patch(f"/api/projects/{world.project.pk}/", {"name": "x"}, format="json").status_code == 403


def test_without_credentials_or_with_a_bad_token_the_answer_is_401_with_a_challenge(world):
    # Token authentication comes first in REST_FRAMEWORK: its challenge is what makes DRF answer 401, not 403.
    anonymous = APIClient().get("/api/projects/")
    assert (anonymous.status_code, anonymous["WWW-Authenticate"]) == (401, "Token")
    assert anonymous.json() == {"detail": "Authentication credentials were not provided."}
    response = APIClient(HTTP_AUTHORIZATION="Token not-a-token").get("/api/projects/")
    assert (response.status_code, response.json()) == (401, {"detail": "Invalid token."})


@pytest.mark.django_db
def test_the_schema_is_valid_openapi_3_in_yaml_and_json(client_for, world):
    carol = client_for("viewer")
    as_yaml = yaml.safe_load(carol.get("/api/schema/").content)
    as_json = json.loads(carol.get("/api/schema/", {"format": "json"}).content)
    assert as_yaml == as_json
    assert as_json["openapi"].startswith("3.")
    validate_schema(as_json)
    assert "/api/projects/{id}/stages/{stage}/run/" in as_json["paths"]


@pytest.mark.django_db
def test_the_docs_page_loads_swagger_ui_from_the_install_not_a_cdn(client_for, world):
    from django.contrib.staticfiles import finders

    response = client_for("viewer").get("/api/docs/")
    body = response.content.decode()
    assert response.status_code == 200
    scripts = re.findall(r'<script src="([^"]+)"', body)
    assert scripts and all(src.startswith("/static/") for src in scripts), scripts
    assert "cdn." not in body and "unpkg" not in body
    for src in scripts:  # each file is shipped by drf-spectacular-sidecar, so an offline install serves it
        assert finders.find(src.removeprefix("/static/")), src


def test_the_schema_generates_without_warnings(tmp_path):
    call_command("spectacular", "--validate", "--fail-on-warn", "--file", str(tmp_path / "schema.yaml"))
