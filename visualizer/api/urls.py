from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("architectures", views.ArchitectureViewSet, basename="architecture")

urlpatterns = router.urls
