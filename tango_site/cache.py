"""Django's Redis cache with one client and connection pool per process instead of one per request.

Django keeps a cache object per async context (`caches` is an asgiref Local), and under ASGI every request runs
in a context of its own: each request built a new RedisCache, a new connection pool and a new Redis connection
(connect, HELLO, CLIENT SETINFO twice, each library version looked up in its installed metadata), used it for
the session's one GET and dropped it; and each cache call built a redis.Redis object (its ~170 response
callbacks copied into a dict). Together ~2–3 ms of a signed-in request's CPU here (bench/load.py). The client and
its pool are shared by every cache object with the same servers and options; redis-py's pool is thread-safe and
checks the process id, so a forked process builds its own connections.
"""

import threading

from django.core.cache.backends.redis import RedisCache, RedisCacheClient
from django.utils.functional import cached_property

_clients: dict[tuple, "SharedRedisCacheClient"] = {}
_lock = threading.Lock()


class SharedRedisCacheClient(RedisCacheClient):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._redis_clients = {}

    def get_client(self, key=None, *, write=False):
        pool = self._get_connection_pool(write)
        client = self._redis_clients.get(id(pool))
        if client is None:  # a race builds two equal clients; either will do
            client = self._redis_clients[id(pool)] = self._client(connection_pool=pool)
        return client

    def _get_connection_pool(self, write):
        with _lock:
            return super()._get_connection_pool(write)


class SharedPoolRedisCache(RedisCache):
    def __init__(self, server, params):
        super().__init__(server, params)
        self._class = SharedRedisCacheClient

    @cached_property
    def _cache(self):
        key = (tuple(self._servers), repr(sorted(self._options.items())))
        with _lock:
            if key not in _clients:
                _clients[key] = self._class(self._servers, **self._options)
            return _clients[key]
