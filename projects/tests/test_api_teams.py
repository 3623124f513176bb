"""Teams and their members over the API."""

import pytest

from projects.models import Membership, Role


@pytest.fixture
def alice(client_for):
    return client_for("owner")


def members(client, team):
    return {m["username"]: m["role"] for m in client.get(f"/api/teams/{team.pk}/members/").data}


def test_the_team_list_shows_the_users_own_role_in_each_team(world, client_for):
    assert [(t["name"], t["role"]) for t in client_for("viewer").get("/api/teams/").data["results"]] == [
        ("Vision", "viewer")]
    assert [t["name"] for t in client_for("outsider").get("/api/teams/").data["results"]] == ["Other lab"]


def test_whoever_creates_a_team_owns_it(world, client_for):
    response = client_for("frank").post("/api/teams/", {"name": "Night shift"}, format="json")
    assert response.status_code == 201
    assert response.data["role"] == "owner"
    assert Membership.objects.get(team_id=response.data["id"]).user.username == "frank"


def test_members_are_listed_with_their_roles(world, client_for):
    assert members(client_for("viewer"), world.team) == {"alice": "owner", "bob": "editor", "carol": "viewer"}


def test_the_owner_adds_changes_and_removes_members_by_username(world, alice):
    url = f"/api/teams/{world.team.pk}/members/"
    assert alice.post(url, {"username": "frank"}, format="json").data == {"username": "frank", "role": "viewer"}
    assert alice.patch(url + "frank/", {"role": "editor"}, format="json").data["role"] == "editor"
    assert alice.delete(url + "carol/").status_code == 204
    assert members(alice, world.team) == {"alice": "owner", "bob": "editor", "frank": "editor"}


def test_adding_an_unknown_user_is_a_400(world, alice):
    response = alice.post(f"/api/teams/{world.team.pk}/members/", {"username": "nobody"}, format="json")
    assert response.status_code == 400
    assert "username=nobody does not exist" in str(response.data["username"][0])


def test_a_user_who_is_not_a_member_cannot_be_changed_or_removed(world, alice):
    url = f"/api/teams/{world.team.pk}/members/dave/"
    assert alice.patch(url, {"role": "editor"}, format="json").status_code == 404
    assert alice.delete(url).status_code == 404


def test_the_last_owner_can_neither_step_down_nor_leave(world, alice):
    url = f"/api/teams/{world.team.pk}/members/alice/"
    message = ["A team needs at least one owner; make someone else owner first."]
    assert alice.patch(url, {"role": "editor"}, format="json").data == {"role": message}
    assert alice.delete(url).data == {"role": message}
    Membership.objects.filter(user__username="bob").update(role=Role.OWNER)
    assert alice.patch(url, {"role": "editor"}, format="json").status_code == 200
