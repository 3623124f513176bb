from django.urls import path

from . import account_views, pipeline, views

app_name = "projects"
urlpatterns = [
    # Pages
    path("", views.project_list_view, name="list"),
    path("projects/new/", views.project_create_view, name="create"),
    path("projects/<int:pk>/", views.project_detail, name="detail"),
    path("projects/<int:pk>/edit/", views.project_edit, name="edit"),
    path("datasets/", views.dataset_list_view, name="dataset_list"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("tokens/", account_views.token_list, name="tokens"),
    path("tokens/<int:pk>/revoke/", account_views.token_revoke, name="token_revoke"),
    path("teams/<int:team_id>/audit/", account_views.team_audit, name="team_audit"),
    # Pipeline panel and job actions (projects.pipeline)
    path("projects/demo/", pipeline.demo_start, name="demo"),
    path("projects/<int:pk>/weights/", views.project_weights, name="weights"),
    path("projects/<int:pk>/delete/", views.project_delete_view, name="delete"),
    path("projects/<int:project_id>/pipeline/", pipeline.pipeline_panel, name="pipeline"),
    path("projects/<int:project_id>/pipeline/run/", pipeline.pipeline_run, name="pipeline_run"),
    path("projects/<int:project_id>/stages/<slug:stage_key>/run/", pipeline.stage_run, name="stage_run"),
    path("jobs/<int:job_id>/", pipeline.job_detail, name="job_detail"),
    path("jobs/<int:job_id>/cancel/", pipeline.job_cancel_view, name="job_cancel"),
    path("jobs/<int:job_id>/retry/", pipeline.job_retry_view, name="job_retry"),
    path("jobs/<int:job_id>/log.txt", pipeline.job_log_download, name="job_log_download"),
]
