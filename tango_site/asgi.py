import os

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "tango_site.settings")
django.setup(set_prefix=False)  # what django.core.asgi.get_asgi_application does, with our handler after it

from tango_site.handler import SyncChainASGIHandler  # noqa: E402

# Every view is sync: the whole middleware chain and the view run in one thread hop (why: tango_site/handler.py).
django_asgi_app = SyncChainASGIHandler()

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
        # body, or an upload from a sender who may upload nowhere, is refused before Django spools it.
        "http": BodyLimit(StaticFiles(django_asgi_app)),
        "websocket": AllowedHostsOriginValidator(AuthMiddlewareStack(URLRouter(websocket_urlpatterns))),
    }
)
