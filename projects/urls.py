from django.urls import path

from . import views

app_name = "projects"
urlpatterns = [
    path("", views.project_list_view, name="list"),
    path("projects/new/", views.project_create_view, name="create"),
    path("projects/<int:pk>/", views.project_detail, name="detail"),
    path("projects/<int:pk>/edit/", views.project_edit, name="edit"),
    path("datasets/", views.dataset_list_view, name="dataset_list"),
    path("datasets/upload/", views.dataset_upload, name="dataset_upload"),
    path("datasets/<int:pk>/", views.dataset_detail, name="dataset_detail"),
    path("devices/", views.device_list, name="device_list"),
]
