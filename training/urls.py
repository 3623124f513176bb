from django.urls import path

from . import views

app_name = "training"
urlpatterns = [path("jobs/<int:job_id>/adopt/", views.search_adopt_view, name="search_adopt")]
