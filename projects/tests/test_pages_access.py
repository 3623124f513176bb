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
