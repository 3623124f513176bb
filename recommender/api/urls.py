from django.urls import path
from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("devices", views.DeviceViewSet, basename="device")
router.register("engines", views.EngineViewSet, basename="engine")

urlpatterns = router.urls + [
    path("projects/<int:project_id>/recommendation/",
         views.ProjectRecommendationViewSet.as_view({"get": "retrieve"}), name="project-recommendation"),
    path("projects/<int:project_id>/recommendation/choice/",
         views.ProjectRecommendationViewSet.as_view({"post": "choice"}), name="project-recommendation-choice"),
]
