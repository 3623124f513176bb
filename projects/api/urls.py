from django.urls import re_path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>[0-9]{1,18})/jobs", views.ProjectJobViewSet, basename="project-job")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    re_path(r"^jobs/(?P<pk>[0-9]{1,18})/log\.txt$", views.JobViewSet.as_view({"get": "log_text"}),
            name="job-log-text"),
    *router.urls,
]
