"""The REST API: each app contributes its routes under /api/."""

from django.urls import include, path
from rest_framework.authtoken.views import obtain_auth_token

urlpatterns = [
    path("auth/token/", obtain_auth_token, name="api-token"),
    path("", include("projects.api.urls")),
    path("", include("recommender.api.urls")),
    path("", include("deployment.api.urls")),
    path("", include("training.api.urls")),
]
