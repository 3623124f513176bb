from django.urls import path

from . import views

app_name = "visualizer"
urlpatterns = [
    path("projects/<int:project_id>/network/", views.editor, name="editor"),
    path("projects/<int:project_id>/network/check/", views.layer_check, name="layer_check"),
    path("projects/<int:project_id>/network/layer/", views.layer_form, name="layer_form"),
]
