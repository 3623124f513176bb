from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("artifacts", views.ArtifactViewSet, basename="artifact")
router.register("trials", views.TrialViewSet, basename="trial")

urlpatterns = router.urls
