from django.urls import path

from . import views

app_name = "recommender"
urlpatterns = [
    path("devices/", views.device_list, name="device_list"),
    path("devices/<int:pk>/", views.device_detail, name="device_detail"),
    path("devices/<int:pk>/calibrate/", views.device_calibrate, name="device_calibrate"),
    path("devices/this-server/measurements/", views.host_measurements, name="host_measurements"),
    path("projects/<int:project_id>/model/", views.project_model_choose_view, name="project_model_choose"),
]
