"""The REST API: each app contributes its routes under /api/."""

from django.urls import include, path

from .api_auth import TokenObtainView

urlpatterns = [
    path("auth/token/", TokenObtainView.as_view(), name="api-token"),
    path("", include("projects.api.urls")),
    path("", include("recommender.api.urls")),
    path("", include("deployment.api.urls")),
    path("", include("training.api.urls")),
    path("", include("visualizer.api.urls")),
]
