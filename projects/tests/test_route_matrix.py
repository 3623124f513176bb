"""Every page route and the websocket route × owner, editor, viewer, outsider, staff, anonymous, as one table.

The REST API has its own table (test_api_matrix, every operation of the schema); Django's admin is checked as a
whole (every admin route turns away whoever is not staff). A route added without an entry here fails
test_every_route_has_an_entry, so no page ships without a decision about who may open it.

Outsiders (and staff, who are in no team) get 404 for a team's rows: they must not learn that the rows exist.
Viewers get 403 on anything that changes a row. Anonymous visitors are sent to the login page (302).
"""

from pathlib import Path

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse

from deployment.models import Artifact
from projects.jobs.models import JobStatus
from projects.jobs.routing import websocket_urlpatterns
from projects.tokens import api_token_create
from recommender.models import Device

from .conftest import make_job, make_trial

PERSONAS = ("owner", "editor", "viewer", "outsider", "staff", "anonymous")
ALL = (200,) * 6
MEMBERS_ONLY = (200, 200, 200, 404, 404, 302)  # a team's row: read by its members
EDITORS_ONLY = (200, 200, 403, 404, 404, 302)  # a change to a team's row
SIGNED_IN = (200, 200, 200, 200, 200, 302)

# route name: (method, url arguments from the world, statuses in PERSONAS order)
PAGES = {
    "projects:list": ("GET", None, SIGNED_IN),
    "projects:create": ("GET", None, (200, 200, 403, 200, 403, 302)),  # needs an editor role in some team
    "projects:detail": ("GET", "project", MEMBERS_ONLY),
    "projects:edit": ("GET", "project", EDITORS_ONLY),
    "projects:dataset_list": ("GET", None, SIGNED_IN),
    "projects:dataset_upload": ("GET", None, (200, 200, 403, 200, 403, 302)),
    "projects:dataset_detail": ("GET", "dataset", MEMBERS_ONLY),
    "recommender:device_list": ("GET", None, SIGNED_IN),
    "recommender:device_detail": ("GET", "device", SIGNED_IN),  # the catalog is shared by all teams
    # Only staff measure this server (a catalog job); a plain POST comes back to the device page (302).
    "recommender:device_calibrate": ("POST", "host_device", (403, 403, 403, 403, 302, 302)),
    # This server's measurements panel is an htmx fragment; a plain GET is sent to the device page.
    "recommender:host_measurements": ("GET", None, (302,) * 6),
    # No model named: the project page comes back (302) with the reason as a message.
    "recommender:project_model_choose": ("POST", "project_id", (302, 302, 403, 404, 404, 302)),
    # Without the confirmation box ticked, the edit page comes back with the reason (409).
    "projects:delete": ("POST", "project", (409, 409, 403, 404, 404, 302)),
    "projects:tokens": ("GET", None, SIGNED_IN),
    # bob's token: only bob revokes it (and is sent back to his token list); for anyone else it does not exist.
    "projects:token_revoke": ("POST", "bobs_token", (404, 302, 404, 404, 404, 302)),
    "projects:team_audit": ("GET", "team", (200, 403, 403, 404, 404, 302)),
    "projects:demo": ("POST", None, (302, 302, 403, 302, 403, 302)),
    "projects:weights": ("POST", "project", (400, 400, 403, 404, 404, 302)),  # an empty form: the reason, 400
    "projects:pipeline": ("GET", "project_id", MEMBERS_ONLY),
    "projects:pipeline_run": ("POST", "project_id", EDITORS_ONLY),
    "projects:stage_run": ("POST", "stage", EDITORS_ONLY),
    "projects:job_detail": ("GET", "failed_job", MEMBERS_ONLY),
    "projects:job_cancel": ("POST", "queued_job", EDITORS_ONLY),
    "projects:job_retry": ("POST", "failed_job", EDITORS_ONLY),
    "projects:job_log_download": ("GET", "failed_job", MEMBERS_ONLY),
    "deployment:artifact_download": ("GET", "artifact", MEMBERS_ONLY),
    "deployment:try_page": ("GET", "project_id", MEMBERS_ONLY),  # viewers see the tries; posting one: editors
    "deployment:trial_detail": ("GET", "trial", MEMBERS_ONLY),
    "deployment:trial_image": ("GET", "trial", MEMBERS_ONLY),
    "deployment:model_import": ("GET", "project_id", EDITORS_ONLY),
    # Not a finished search: editors get the panel back with the reason.
    "training:search_adopt": ("POST", "failed_job", EDITORS_ONLY),
    # Not a failed conversion: editors get the panel back with the reason.
    "deployment:convert_accept": ("POST", "failed_job", EDITORS_ONLY),
    # No recommendation yet in this world: members see the editor page saying to run it first.
    "visualizer:editor": ("GET", "project_id", MEMBERS_ONLY),
    # The layer form's as-you-type check changes nothing: members get its answer (here: which node, none named).
    "visualizer:layer_check": ("POST", "project_id", MEMBERS_ONLY),
    # Apply of the layer form changes the draft: editors get the answer, viewers are refused.
    "visualizer:layer_form": ("POST", "project_id", EDITORS_ONLY),
    # Django's sign-in pages: open to all, except changing one's own password.
    "login": ("GET", None, ALL),
    "logout": ("POST", None, (302,) * 6),
    "password_change": ("GET", None, SIGNED_IN),
    "password_change_done": ("GET", None, SIGNED_IN),
    "password_reset": ("GET", None, ALL),
    "password_reset_done": ("GET", None, ALL),
    "password_reset_confirm": ("GET", "reset_link", ALL),  # a bad link: the page says so
    "password_reset_complete": ("GET", None, ALL),
    # The API's schema and docs page: the API itself needs a sign-in; its description does not.
    "api-schema": ("GET", None, ALL),
    "api-docs": ("GET", None, ALL),
    "admin:index": ("GET", None, (302, 302, 302, 302, 200, 302)),
}

# Catalog jobs (no project: this server measuring itself) on the job routes: staff's alone; for everyone else they
# do not exist. Cancel and retry send staff back to the job's panel (302), refusals as a message there.
STAFF_ONLY = (404, 404, 404, 404, 200, 302)
CATALOG_JOB_PAGES = {
    "projects:job_detail": ("GET", "catalog_job", STAFF_ONLY),
    "projects:job_log_download": ("GET", "catalog_job", STAFF_ONLY),
    "projects:job_cancel": ("POST", "queued_catalog_job", (404, 404, 404, 404, 302, 302)),
    "projects:job_retry": ("POST", "catalog_job", (404, 404, 404, 404, 302, 302)),
}

WEBSOCKETS = {
    # route: whether the handshake is accepted, in PERSONAS order
    "ws/jobs/<int:job_id>/": (True, True, True, False, False, False),
}
CATALOG_WEBSOCKET = (False, False, False, False, True, False)  # a catalog job's console: staff only


def url_arguments(world, kind):
    w = world
    return {
        None: [], "project": [w.project.pk], "device": [w.device.pk], "project_id": [w.project.pk],
        "dataset": [w.dataset.pk],
        "team": [w.team.pk], "stage": [w.project.pk, "recommend"], "failed_job": [w.failed_job.pk],
        "queued_job": [w.queued_job.pk], "artifact": [w.artifact.pk], "bobs_token": [w.bobs_token.pk],
        "trial": [w.trial.pk], "host_device": [w.host_device.pk], "catalog_job": [w.catalog_job.pk],
        "queued_catalog_job": [w.queued_catalog_job.pk],
        "reset_link": ["MQ", "not-a-token"],
    }[kind]


@pytest.fixture
def routes_world(world):
    path = Path(settings.MEDIA_ROOT) / "projects" / str(world.project.pk) / "model.onnx"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"onnx")
    world.artifact = Artifact.objects.create(
        project=world.project, job=world.failed_job, kind="onnx", engine="onnxruntime", status="verified",
        path=str(path.relative_to(settings.MEDIA_ROOT)), size_bytes=4, sha256="0" * 64)
    world.bobs_token, _ = api_token_create(user=world.users["bob"], name="bob's laptop")
    world.trial = make_trial(world.artifact, world.users["bob"])
    world.host_device = Device.objects.get(is_host=True)  # seeded by the migrations, read from this machine
    world.catalog_job = make_job(None, "calibrate", JobStatus.FAILED, ["Calibrate queued.", "Boom."])
    world.queued_catalog_job = make_job(None, "calibrate", JobStatus.QUEUED, ["Calibrate queued."])
    return world


def browser_for(world, persona):
    client = Client()
    user = world.personas[persona]
    if user is not None:
        client.force_login(user)
    return client


CASES = [pytest.param(name, persona, status, id=f"{name} as {persona}")
         for name, (_, _, statuses) in PAGES.items() for persona, status in zip(PERSONAS, statuses, strict=True)]


@pytest.mark.parametrize(("name", "persona", "expected"), CASES)
def test_page_route_as_persona(routes_world, name, persona, expected):
    method, kind, _ = PAGES[name]
    url = reverse(name, args=url_arguments(routes_world, kind))
    response = getattr(browser_for(routes_world, persona), method.lower())(url)
    assert response.status_code == expected
    if expected == 302 and persona == "anonymous" and name not in ("logout",):
        assert response["Location"].startswith((reverse("login"), reverse("admin:login")))


# The upload pages' POSTs (projects.uploads.upload_page). They are csrf_exempt (their upload guard must be set before
# the body is read) and check the sign-in and the role before it, the token after: an empty form gets editors the
# reason (400; the dataset forms redraw with it, 200). Anyone editing no team may not upload a dataset anywhere (403).
UPLOAD_POSTS = {
    "deployment:try_page": ("project_id", (400, 400, 403, 404, 404, 302)),
    "deployment:model_import": ("project_id", (400, 400, 403, 404, 404, 302)),
    "projects:weights": ("project", (400, 400, 403, 404, 404, 302)),
    "projects:dataset_upload": (None, (200, 200, 403, 200, 403, 302)),
    "projects:create": (None, (200, 200, 403, 200, 403, 302)),
}
UPLOAD_CASES = [pytest.param(name, persona, status, id=f"POST {name} as {persona}")
                for name, (_, statuses) in UPLOAD_POSTS.items()
                for persona, status in zip(PERSONAS, statuses, strict=True)]


@pytest.mark.parametrize(("name", "persona", "expected"), UPLOAD_CASES)
def test_upload_page_post_as_persona(routes_world, name, persona, expected):
    kind, _ = UPLOAD_POSTS[name]
    response = browser_for(routes_world, persona).post(reverse(name, args=url_arguments(routes_world, kind)))
    assert response.status_code == expected
    if persona == "anonymous":
        assert response["Location"].startswith(reverse("login"))


CATALOG_CASES = [pytest.param(name, persona, status, id=f"{name} on a catalog job as {persona}")
                 for name, (_, _, statuses) in CATALOG_JOB_PAGES.items()
                 for persona, status in zip(PERSONAS, statuses, strict=True)]


@pytest.mark.parametrize(("name", "persona", "expected"), CATALOG_CASES)
def test_job_route_on_a_catalog_job_as_persona(routes_world, name, persona, expected):
    method, kind, _ = CATALOG_JOB_PAGES[name]
    url = reverse(name, args=url_arguments(routes_world, kind))
    response = getattr(browser_for(routes_world, persona), method.lower())(url)
    assert response.status_code == expected


def admin_routes():
    admin = next(p for p in get_resolver().url_patterns if isinstance(p, URLResolver) and p.namespace == "admin")
    for pattern in admin.url_patterns:
        if isinstance(pattern, URLPattern) and pattern.name and pattern.name not in ("view_on_site", "app_list"):
            yield pattern.name, pattern


def test_every_admin_route_turns_away_whoever_is_not_staff(routes_world):
    for name, pattern in admin_routes():
        args = ["1"] * len(pattern.pattern.converters)
        url = reverse(f"admin:{name}", args=args)
        for persona in ("owner", "editor", "viewer", "outsider", "anonymous"):
            response = browser_for(routes_world, persona).get(url)
            if name in ("login", "logout", "jsi18n"):
                continue  # the admin's own sign-in pages and its translations are for everyone
            assert response.status_code == 302 and response["Location"].startswith(reverse("admin:login")), (
                name, persona, response.status_code)


def test_staff_without_model_rights_see_the_admin_but_not_its_rows(routes_world):
    erin = browser_for(routes_world, "staff")
    assert erin.get(reverse("admin:index")).status_code == 200
    assert erin.get(reverse("admin:projects_auditevent_changelist")).status_code == 403


def all_route_names():
    """(name, path) of every route outside /api/ (test_api_matrix) and /admin/ (checked as a whole above)."""
    found = set()

    def walk(patterns, namespace, prefix):
        for pattern in patterns:
            path = prefix + str(pattern.pattern)
            if isinstance(pattern, URLResolver):
                if pattern.namespace == "admin":
                    found.add(("admin:index", "admin/"))
                    continue
                walk(pattern.url_patterns, pattern.namespace or namespace, path)
            elif not path.startswith("api/") or pattern.name in ("api-schema", "api-docs"):
                found.add((f"{namespace}:{pattern.name}" if namespace else pattern.name, path))

    walk(get_resolver().url_patterns, None, "")
    return found


def test_every_route_has_an_entry():
    assert {name for name, _ in all_route_names()} == set(PAGES)
    assert {str(p.pattern) for p in websocket_urlpatterns} == set(WEBSOCKETS)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS)
def test_websocket_route_as_persona(routes_world, persona):
    expected = WEBSOCKETS["ws/jobs/<int:job_id>/"][PERSONAS.index(persona)]
    path = f"/ws/jobs/{routes_world.failed_job.pk}/"

    async def handshake():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = routes_world.personas[persona] or AnonymousUser()
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected

    assert async_to_sync(handshake)() is expected


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("persona", PERSONAS)
def test_websocket_of_a_catalog_job_as_persona(routes_world, persona):
    path = f"/ws/jobs/{routes_world.catalog_job.pk}/"

    async def handshake():
        communicator = WebsocketCommunicator(URLRouter(websocket_urlpatterns), path)
        communicator.scope["user"] = routes_world.personas[persona] or AnonymousUser()
        connected, _ = await communicator.connect(timeout=10)
        await communicator.disconnect()
        return connected

    assert async_to_sync(handshake)() is CATALOG_WEBSOCKET[PERSONAS.index(persona)]
