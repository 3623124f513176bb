from django.urls import path

from . import pipeline

app_name = "projects"
urlpatterns = [
    path("projects/<int:project_id>/pipeline/", pipeline.pipeline_panel, name="pipeline"),
    path("projects/<int:project_id>/pipeline/run/", pipeline.pipeline_run, name="pipeline_run"),
    path("projects/<int:project_id>/stages/<slug:stage_key>/run/", pipeline.stage_run, name="stage_run"),
    path("jobs/<int:job_id>/", pipeline.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", pipeline.job_cancel_view, name="job_cancel"),
    path("jobs/<int:job_id>/retry/", pipeline.job_retry_view, name="job_retry"),
    path("jobs/<int:job_id>/log.txt", pipeline.job_log_download, name="job_log_download"),
]
