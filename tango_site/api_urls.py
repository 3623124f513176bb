"""The REST API: each app contributes its routes under /api/."""

from django.urls import include, path

urlpatterns = [
    path("", include("projects.api.urls")),
    path("", include("recommender.api.urls")),
]
