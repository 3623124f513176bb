"""Django's ASGI handler with the middleware chain run synchronously: one thread hop per request, not three.

Django builds an ASGI handler's middleware chain in async mode. One sync-only middleware anywhere in it (ours:
DatabaseUnavailable) splits the chain: the outer middleware hop to a thread, the innermost step hops back to the
event loop (async_to_sync), and the sync view hops to a thread again. Every page and API call here is a sync view,
so each request paid for three thread handoffs and the loop's wake-ups between them: a quarter of a light request's
CPU (bench/load.py; the same requests through Django's WSGI handler cost that much less).

Here the chain is built in sync mode (as under WSGI) and the whole of it, middleware and view, runs in a single
sync_to_async call. What Django's ASGI handler does around it is unchanged: reading the body, request_started and
request_finished, watching for a disconnect, streaming responses. The call is thread-sensitive, as Django's own,
so a request's database work stays on one thread.
"""

from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler


class SyncChainASGIHandler(ASGIHandler):
    def load_middleware(self, is_async=False):
        super().load_middleware(is_async=False)

    async def get_response_async(self, request):
        return await sync_to_async(self.get_response, thread_sensitive=True)(request)
