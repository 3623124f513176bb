from django.urls import path

from . import views

app_name = "recommender"
urlpatterns = [path("devices/", views.device_list, name="device_list")]
