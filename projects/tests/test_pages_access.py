"""Who may open which page: every page × every persona, as one table.

Outsiders get 404 for rows of teams they are not in (they must not learn the rows exist); viewers see pages but
get 403 on anything that creates or changes; anonymous users go to the login page.
"""

import pytest
from django.urls import reverse

from .pages_fixtures import *  # noqa: F403

PERSONAS = ("owner", "editor", "viewer", "outsider", "anonymous")

# page -> expected status per persona, in PERSONAS order. 302 is always the redirect to the login page.
GET_MATRIX = {
    "list":           {"owner": 200, "editor": 200, "viewer": 200, "outsider": 200, "anonymous": 302},
    "create":         {"owner": 200, "editor": 200, "viewer": 403, "outsider": 200, "anonymous": 302},
    "detail":         {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "anonymous": 302},
    "edit":           {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "anonymous": 302},
    "dataset_list":   {"owner": 200, "editor": 200, "viewer": 200, "outsider": 200, "anonymous": 302},
    "dataset_upload": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 200, "anonymous": 302},
    "dataset_detail": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 404, "anonymous": 302},
    "recommender:device_list": {"owner": 200, "editor": 200, "viewer": 200, "outsider": 200, "anonymous": 302},
}

# POSTs that would change something; empty bodies are enough, the role check comes first.
POST_MATRIX = {
    "create":         {"owner": 200, "editor": 200, "viewer": 403, "outsider": 200, "anonymous": 302},
    "edit":           {"owner": 200, "editor": 200, "viewer": 403, "outsider": 404, "anonymous": 302},
    "dataset_upload": {"owner": 200, "editor": 200, "viewer": 403, "outsider": 200, "anonymous": 302},
    # An empty weights form re-renders the project page with the reason.
    "weights":        {"owner": 400, "editor": 400, "viewer": 403, "outsider": 404, "anonymous": 302},
    # Without the confirmation box ticked, the edit page comes back with the reason.
    "delete":         {"owner": 409, "editor": 409, "viewer": 403, "outsider": 404, "anonymous": 302},
}


def _url(page, project, dataset):
    if page in ("detail", "edit", "weights", "delete"):
        return reverse(f"projects:{page}", args=[project.pk])
    if page == "dataset_detail":
        return reverse("projects:dataset_detail", args=[dataset.pk])
    return reverse(page if ":" in page else f"projects:{page}")


def _client_as(client, user):
    if user is not None:
        client.force_login(user)
    return client


def _cases(matrix):
    return [(page, who, status) for page, row in matrix.items() for who, status in row.items()]


@pytest.mark.parametrize("page,who,expected", _cases(GET_MATRIX))
def test_get_page_as_persona(client, persona, project, digits, page, who, expected):
    response = _client_as(client, persona(who)).get(_url(page, project, digits))
    assert response.status_code == expected
    if expected == 302:
        assert response.url.startswith(reverse("login"))


@pytest.mark.parametrize("page,who,expected", _cases(POST_MATRIX))
def test_post_page_as_persona(client, persona, project, digits, page, who, expected):
    response = _client_as(client, persona(who)).post(_url(page, project, digits), {})
    assert response.status_code == expected


def test_every_page_is_in_the_matrix():
    from projects.urls import urlpatterns
    from recommender.urls import urlpatterns as catalog_urlpatterns

    pages = {p.name for p in urlpatterns if p.callback.__module__ == "projects.views"}
    pages |= {f"recommender:{p.name}" for p in catalog_urlpatterns}
    assert pages == set(GET_MATRIX) | set(POST_MATRIX)  # POST-only views (weights) sit in POST_MATRIX alone


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
