from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("devices", views.DeviceViewSet, basename="device")
router.register("engines", views.EngineViewSet, basename="engine")

urlpatterns = router.urls
