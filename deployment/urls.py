from django.urls import path

from . import views

app_name = "deployment"
urlpatterns = [
    path("artifacts/<int:artifact_id>/download/", views.artifact_download, name="artifact_download"),
    path("projects/<int:project_id>/try/", views.try_page, name="try_page"),
    path("trials/<int:trial_id>/", views.trial_detail, name="trial_detail"),
    path("trials/<int:trial_id>/image/", views.trial_image, name="trial_image"),
    path("projects/<int:project_id>/import-model/", views.model_import_page, name="model_import"),
    path("jobs/<int:job_id>/accept/", views.convert_accept_view, name="convert_accept"),
]
