"""The sessions' Redis cache (tango_site.cache): one client and pool per process, whatever the context."""

import threading

from tango_site.cache import SharedPoolRedisCache

PARAMS = {"OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5}}


def test_cache_objects_of_every_request_share_one_client_and_pool():
    # Django builds a cache object per request context under ASGI; each used to open its own connection.
    caches = [SharedPoolRedisCache("redis://127.0.0.1:1/0", PARAMS) for _ in range(2)]
    found = []
    thread = threading.Thread(target=lambda: found.append(SharedPoolRedisCache("redis://127.0.0.1:1/0", PARAMS)))
    thread.start()
    thread.join()
    clients = {id(cache._cache) for cache in [*caches, *found]}
    assert len(clients) == 1
    assert caches[0]._cache.get_client() is caches[1]._cache.get_client(write=True)


def test_another_server_or_options_get_their_own_client():
    first = SharedPoolRedisCache("redis://127.0.0.1:1/0", PARAMS)
    assert SharedPoolRedisCache("redis://127.0.0.1:1/1", PARAMS)._cache is not first._cache
    assert SharedPoolRedisCache("redis://127.0.0.1:1/0", {"OPTIONS": {}})._cache is not first._cache
