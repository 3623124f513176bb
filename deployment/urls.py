from django.urls import path

from . import views

app_name = "deployment"
urlpatterns = [path("artifacts/<int:artifact_id>/download/", views.artifact_download, name="artifact_download")]
