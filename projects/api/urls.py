from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("teams", views.TeamViewSet, basename="team")
router.register("datasets", views.DatasetViewSet, basename="dataset")
router.register("projects", views.ProjectViewSet, basename="project")
router.register(r"projects/(?P<project_pk>\d+)/jobs", views.ProjectJobViewSet, basename="project-job")
router.register("jobs", views.JobViewSet, basename="job")

urlpatterns = [
    path("jobs/<int:pk>/log.txt", views.JobViewSet.as_view({"get": "log_text"}), name="job-log-text"),
    *router.urls,
]
