from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("artifacts", views.ArtifactViewSet, basename="artifact")

urlpatterns = router.urls
