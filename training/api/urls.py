from rest_framework.routers import SimpleRouter

from . import views

router = SimpleRouter()
router.register("searches", views.SearchViewSet, basename="search")

urlpatterns = router.urls
