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
    assert alice.post(url, {"username": "frank"}, format="json").status_code == 202
    assert members(alice, world.team)["frank"] == "viewer"
    assert alice.patch(url + "frank/", {"role": "editor"}, format="json").data["role"] == "editor"
    assert alice.delete(url + "carol/").status_code == 204
    assert members(alice, world.team) == {"alice": "owner", "bob": "editor", "frank": "editor"}


def test_adding_an_unknown_user_answers_as_adding_a_known_one(world, alice):
    # Regression (issue 8, defect 6): a 400 "does not exist" let any team owner test which usernames exist.
    url = f"/api/teams/{world.team.pk}/members/"
    known, unknown = (alice.post(url, {"username": name, "role": "editor"}, format="json")
                      for name in ("frank", "nobody"))
    assert known.status_code == unknown.status_code == 202
    assert known.json()["detail"].replace("frank", "X") == unknown.json()["detail"].replace("nobody", "X")
    assert set(members(alice, world.team)) == {"alice", "bob", "carol", "frank"}


def test_adding_members_is_rate_limited(world, alice, settings):
    settings.TANGO_MEMBER_ADD_RATE = "3/hour"
    url = f"/api/teams/{world.team.pk}/members/"
    codes = [alice.post(url, {"username": f"guess{i}"}, format="json").status_code for i in range(4)]
    assert codes == [202, 202, 202, 429]


def test_patching_a_member_without_a_role_changes_nothing(world, alice):
    # Regression (issue 8, defect 5): PATCH required `role` as if it were a PUT.
    response = alice.patch(f"/api/teams/{world.team.pk}/members/carol/", {}, format="json")
    assert (response.status_code, response.json()) == (200, {"username": "carol", "role": "viewer"})


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
