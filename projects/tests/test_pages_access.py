"""What each role is offered on the pages. Who may open which route is one table in test_route_matrix."""

from django.urls import reverse

from .pages_fixtures import *  # noqa: F403


def test_viewer_sees_no_create_or_edit_buttons(client, viewer, project, digits):
    client.force_login(viewer)
    pages = [reverse("projects:list"), reverse("projects:detail", args=[project.pk]), reverse("projects:dataset_list")]
    for url in pages:
        body = client.get(url).content.decode()
        assert reverse("projects:create") not in body
        assert reverse("projects:edit", args=[project.pk]) not in body
        assert reverse("projects:dataset_upload") not in body


def test_owner_sees_create_and_edit_buttons(client, owner, project):
    client.force_login(owner)
    assert reverse("projects:create") in client.get(reverse("projects:list")).content.decode()
    assert reverse("projects:edit", args=[project.pk]) in client.get(
        reverse("projects:detail", args=[project.pk])).content.decode()
    assert reverse("projects:dataset_upload") in client.get(reverse("projects:dataset_list")).content.decode()


def test_outsider_lists_none_of_the_teams_rows(client, outsider, project, digits):
    client.force_login(outsider)
    assert project.name not in client.get(reverse("projects:list")).content.decode()
    assert digits.name not in client.get(reverse("projects:dataset_list")).content.decode()


def test_the_header_lists_the_users_teams_and_an_owners_audit_links_on_every_page(client, owner, project,
                                                                                   outsider_team):
    # The project pages read the user's memberships once for the header and their own role checks.
    client.force_login(owner)
    audit = reverse("projects:team_audit", args=[project.team.pk])
    pages = [reverse("projects:list"), reverse("projects:detail", args=[project.pk]), reverse("projects:dataset_list")]
    for url in pages:
        body = client.get(url).content.decode()
        assert f"Teams: {project.team.name}</p>" in body and audit in body
        assert outsider_team.name not in body and "Audit log: Elsewhere" not in body


def test_a_role_change_shows_on_the_next_page_load(client, viewer, project):
    client.force_login(viewer)
    edit, create = reverse("projects:edit", args=[project.pk]), reverse("projects:create")
    assert edit not in client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert create not in client.get(reverse("projects:list")).content.decode()
    project.team.memberships.filter(user=viewer).update(role="editor")
    assert edit in client.get(reverse("projects:detail", args=[project.pk])).content.decode()
    assert create in client.get(reverse("projects:list")).content.decode()
    project.team.memberships.filter(user=viewer).delete()
    assert client.get(reverse("projects:detail", args=[project.pk])).status_code == 404
    assert project.team.name not in client.get(reverse("projects:list")).content.decode()
