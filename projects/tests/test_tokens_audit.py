"""API tokens (created, listed and revoked by their owner only) and the audit log team owners read."""

from django.contrib.auth import get_user_model
from django.test import Client
from rest_framework.test import APIClient

from projects.models import ApiToken, AuditEvent


def token_client(key):
    return APIClient(HTTP_AUTHORIZATION=f"Token {key}")


def test_a_user_creates_lists_and_revokes_their_tokens(world, client_for):
    bob = client_for("editor")
    created = bob.post("/api/tokens/", {"name": "CI pipeline"}, format="json")
    assert created.status_code == 201
    key = created.json()["key"]
    listed = bob.get("/api/tokens/").json()["results"]
    assert [(t["name"], t["prefix"]) for t in listed] == [("CI pipeline", key[:8])]
    assert "key" not in listed[0]
    assert token_client(key).get("/api/projects/").status_code == 200
    assert bob.delete(f"/api/tokens/{created.json()['id']}/").status_code == 204
    revoked = token_client(key).get("/api/projects/")
    assert (revoked.status_code, revoked["WWW-Authenticate"]) == (401, "Token")


def test_only_the_keys_hash_is_kept(world, client_for):
    key = client_for("editor").post("/api/tokens/", {"name": "x"}, format="json").json()["key"]
    row = ApiToken.objects.values().get()
    assert key not in str(row) and len(row["key_sha256"]) == 64


def test_nobody_else_sees_or_revokes_a_token_not_even_staff(world, client_for):
    token_id = client_for("editor").post("/api/tokens/", {"name": "bob's"}, format="json").json()["id"]
    for persona in ("owner", "staff", "outsider"):
        other = client_for(persona)
        assert other.get("/api/tokens/").json()["results"] == []
        assert other.delete(f"/api/tokens/{token_id}/").status_code == 404
        assert Client().post(f"/tokens/{token_id}/revoke/").status_code == 302  # anonymous: to the login page
    assert ApiToken.objects.filter(pk=token_id).exists()


def test_the_token_page_shows_a_new_key_once_and_revokes(world):
    browser = Client()
    browser.force_login(world.users["carol"])
    page = browser.post("/tokens/", {"name": "laptop"})
    token = ApiToken.objects.get(user=world.users["carol"])
    assert page.status_code == 200 and b'data-testid="new-key"' in page.content
    assert b'data-testid="new-key"' not in browser.get("/tokens/").content and b"laptop" in page.content
    assert browser.post(f"/tokens/{token.pk}/revoke/").status_code == 302
    assert not ApiToken.objects.exists()


def test_signing_in_through_the_api_issues_a_listed_token(world):
    key = APIClient().post("/api/auth/token/", {"username": "carol", "password": "pw-carol"}).json()["token"]
    assert [t["prefix"] for t in token_client(key).get("/api/tokens/").json()["results"]] == [key[:8]]


def actions(events):
    return [(e["actor"], e["action"], e["target_type"], e["target_label"]) for e in events]


def test_owners_read_who_did_what_in_their_team(world, client_for, django_capture_on_commit_callbacks):
    alice, bob = client_for("owner"), client_for("editor")
    project = world.project
    with django_capture_on_commit_callbacks(execute=True):
        assert bob.post(f"/api/projects/{project.pk}/stages/recommend/run/").status_code == 202
    job_id = project.jobs.filter(stage="recommend").first().pk
    assert bob.post(f"/api/jobs/{job_id}/cancel/").status_code == 200
    assert bob.get(f"/api/jobs/{world.failed_job.pk}/log.txt").status_code == 200
    assert alice.patch(f"/api/teams/{world.team.pk}/members/carol/", {"role": "editor"}, format="json").status_code \
        == 200
    assert bob.delete(f"/api/projects/{world.spare_project.pk}/").status_code == 204
    events = alice.get(f"/api/teams/{world.team.pk}/audit/").json()["results"]
    assert actions(events)[:5] == [
        ("bob", "deleted", "project", "Fresh start"),
        ("alice", "role_changed", "user", "carol"),
        ("bob", "downloaded", "job", str(world.failed_job)),
        ("bob", "cancelled", "job", str(project.jobs.get(pk=job_id))),
        ("bob", "started", "job", str(project.jobs.get(pk=job_id))),
    ]
    assert events[1]["detail"] == "viewer → editor"


def test_the_audit_log_is_for_owners_only(world, client_for):
    url = f"/api/teams/{world.team.pk}/audit/"
    codes = {p: client_for(p).get(url).status_code for p in ("owner", "editor", "viewer", "outsider", "staff")}
    assert codes == {"owner": 200, "editor": 403, "viewer": 403, "outsider": 404, "staff": 404}
    assert APIClient().get(url).status_code == 401
    page = {p: Client() for p in ("owner", "editor", "outsider")}
    for persona, browser in page.items():
        browser.force_login(world.personas[persona])
    assert [page[p].get(f"/teams/{world.team.pk}/audit/").status_code for p in page] == [200, 403, 404]


def test_staff_read_the_audit_log_in_the_admin_and_cannot_edit_it(world, client_for):
    client_for("owner").post("/api/tokens/", {"name": "x"}, format="json")
    admin = get_user_model().objects.create_superuser("root", password="pw-root-admin")
    browser = Client()
    browser.force_login(admin)
    assert browser.get("/admin/projects/auditevent/").status_code == 200
    event = AuditEvent.objects.get(action="token_created")
    assert browser.post(f"/admin/projects/auditevent/{event.pk}/delete/", {"post": "yes"}).status_code == 403
    assert browser.get("/admin/projects/apitoken/").status_code == 200
