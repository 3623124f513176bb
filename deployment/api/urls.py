from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("artifacts", views.ArtifactViewSet, basename="artifact")
router.register("trials", views.TrialViewSet, basename="trial")
router.register("model-imports", views.ModelImportViewSet, basename="model-import")
router.register("conversions", views.ConversionViewSet, basename="conversion")

urlpatterns = router.urls
