from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import tokens, views

router = SimpleRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>[0-9]{1,18})/jobs", views.ProjectJobViewSet, basename="project-job")
router.register("jobs", views.JobViewSet, basename="job")
router.register("tokens", tokens.ApiTokenViewSet, basename="token")
router.register(r"teams/(?P<team_pk>[0-9]{1,18})/audit", tokens.TeamAuditViewSet, basename="team-audit")

urlpatterns = [
    re_path(r"^jobs/(?P<pk>[0-9]{1,18})/log\.txt$", views.JobViewSet.as_view({"get": "log_text"}),
            name="job-log-text"),
    *router.urls,
]
