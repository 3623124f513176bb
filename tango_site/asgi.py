import os

from django.core.asgi import get_asgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")
django_asgi_app = get_asgi_application()

# Imported after Django is set up: the routing pulls in models.
from channels.auth import AuthMiddlewareStack  # noqa: E402
from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from channels.security.websocket import AllowedHostsOriginValidator  # noqa: E402

from projects.jobs.routing import websocket_urlpatterns  # noqa: E402
from tango_site.security import StaticFiles  # noqa: E402
from tango_site.upload_limit import BodyLimit  # noqa: E402

application = ProtocolTypeRouter(
    {
        # Static files are served by the portal itself: the embedded mode has no separate web server. An oversized
        # body is refused before Django spools it.
        "http": BodyLimit(StaticFiles(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
