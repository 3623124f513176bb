from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

urlpatterns = [
    path("admin/", admin.site.urls),
    path("accounts/", include("django.contrib.auth.urls")),
    path("api/schema/", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("api/", include("tango_site.api_urls")),
    path("", include("deployment.urls")),
    path("", include("training.urls")),
    path("", include("visualizer.urls")),
    path("", include("recommender.urls")),
    path("", include("projects.urls")),
]

# Errors outside DRF views: JSON under /api/, the usual pages elsewhere.
handler403 = "tango_site.api_errors.permission_denied"
handler404 = "tango_site.api_errors.not_found"
handler500 = "tango_site.api_errors.server_error"
