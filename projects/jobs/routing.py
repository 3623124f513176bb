from django.urls import path

from .consumer import JobLogConsumer

websocket_urlpatterns = [path("ws/jobs/<int:job_id>/", JobLogConsumer.as_asgi())]
