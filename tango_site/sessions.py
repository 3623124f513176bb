"""Sessions in the database, read through the shared Redis cache (team mode): one query less per request.

Every signed-in request loaded its session row from Postgres before anything else (bench/load.py: one of a poll's
four queries). Django's cached_db backend keeps a copy in the cache and writes both; reading it from Redis costs a
fraction of a query. The database stays the record, so nothing is lost when Redis is: here any cache error (Redis
stopped, restarting, unreachable within its short timeouts) is logged and the session is read from and written to
the database alone, where Django's backend would answer 500 (its load() and delete() let the error through).

A cached copy lives at most SESSION_CACHE_SECONDS (5 minutes) whatever the session's own age: a session deleted
(signed out) while Redis failed to drop its copy cannot outlive that.
"""

import logging

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.sessions.backends import cached_db

logger = logging.getLogger(__name__)


class SessionStore(cached_db.SessionStore):
    def _cache_call(self, method: str, *args, default=None):
        try:
            return getattr(self._cache, method)(*args)
        except Exception as exc:  # the cache is a shortcut: the database answers instead
            logger.warning("Session cache unavailable (%s): %s", type(exc).__name__, exc)
            return default

    def _cache_age(self, expiry_age: int) -> int:
        return max(0, min(expiry_age, settings.SESSION_CACHE_SECONDS))

    def load(self):
        data = self._cache_call("get", self.cache_key)
        if data is None:
            s = self._get_session_from_db()
            if s:
                data = self.decode(s.session_data)
                age = self._cache_age(self.get_expiry_age(expiry=s.expire_date))
                self._cache_call("set", self.cache_key, data, age)
            else:
                data = {}
        return data

    def exists(self, session_key):
        if session_key and self._cache_call("has_key", self.cache_key_prefix + session_key, default=False):
            return True
        return super(cached_db.SessionStore, self).exists(session_key)

    def save(self, must_create=False):
        super(cached_db.SessionStore, self).save(must_create)
        self._cache_call("set", self.cache_key, self._session, self._cache_age(self.get_expiry_age()))

    def delete(self, session_key=None):
        super(cached_db.SessionStore, self).delete(session_key)
        if session_key is None:
            if self.session_key is None:
                return
            session_key = self.session_key
        self._cache_call("delete", self.cache_key_prefix + session_key)

    # The async API (Django's aget_user, the websocket's auth) does the same, on a thread.
    async def aload(self):
        return await sync_to_async(self.load)()

    async def aexists(self, session_key):
        return await sync_to_async(self.exists)(session_key)

    async def asave(self, must_create=False):
        await sync_to_async(self.save)(must_create)

    async def adelete(self, session_key=None):
        await sync_to_async(self.delete)(session_key)
