"""Live job console over a websocket.

Order of work on connect: subscribe to the job's group, then replay recent lines from the database, then stream.
Every line carries its sequence number; a push that skips numbers makes the consumer refetch the gap from the
database, and a periodic tick does the same (in embedded mode, where the worker's pushes cannot reach this
process, the tick is how lines arrive). So lines are never lost or duplicated, across reconnects too. The tick is
shared: one database read per job per process, whatever the number of viewers (see _JobPoller).

Access is checked on connect and again by the shared tick every TANGO_CONSOLE_ACCESS_SECONDS: a viewer removed from
the team, whose account is deactivated, or (for a catalog job) who is no longer staff, is closed with connect's
refusal code (4403) and sent nothing more; so is a socket whose session no longer signs its user in (logged out in
another tab, flushed, expired, or its password changed elsewhere), judged as Django's auth judges a request's. Why
the tick and not a signal on membership changes or logouts: the tick sees every way access ends (a membership
deleted in bulk or by the admin, a user made inactive, a job's project deleted, a session flushed or its password
hash outdated) and needs no channel layer, which is down or process-local in the modes this console already
survives.

Two formats: HTML fragments for htmx's ws extension (default), JSON with ?format=json for API clients.
"""

import asyncio
import json
import logging
from importlib import import_module
from urllib.parse import parse_qs

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncWebsocketConsumer
from django.conf import settings
from django.contrib.auth import BACKEND_SESSION_KEY, HASH_SESSION_KEY, SESSION_KEY, get_user_model
from django.template.loader import render_to_string
from django.urls import reverse
from django.utils.crypto import constant_time_compare

from ..access import viewable_jobs_for
from .log import job_group
from .models import FINISHED_STATUSES, Job
from .registry import stage_get
from .selectors import log_last_seq, log_lines

logger = logging.getLogger(__name__)

BATCH = 1000
LAYER_RETRY_SECONDS = 2.0  # how often a console whose channel layer is down tries to subscribe again
REFUSED = 4403  # the close code of a socket the user may not (or may no longer) watch


def _viewable_job(user, job_id: int):
    return viewable_jobs_for(user).select_related("project").filter(pk=job_id).first()


def _viewers_allowed(job_id: int, viewers: set[tuple[int, str | None]]) -> set[tuple[int, str | None]]:
    """Which (user id, session key) viewers may still watch the job, read fresh: an active account the job is
    viewable to, on a session that still signs that account in."""
    users = {user.pk: user for user in get_user_model().objects.filter(pk__in={pk for pk, _ in viewers},
                                                                        is_active=True)}
    may_view = {pk for pk, user in users.items() if viewable_jobs_for(user).filter(pk=job_id).exists()}
    return {(pk, key) for pk, key in viewers if pk in may_view and _session_signs_in(key, users[pk])}


def _session_signs_in(session_key: str | None, user) -> bool:
    """Whether this session still signs the user in, judged as django.contrib.auth.get_user judges a request's: the
    session is still in the store (not logged out, flushed or expired), names this user through a configured
    backend, and carries the user's current auth hash (a password change ends every other session). Written out
    rather than calling get_user: where only a SECRET_KEY_FALLBACKS hash matches, get_user re-keys the session, which
    would delete the browser's own session from under it; this check only reads."""
    if not session_key:  # a socket opened without a session (the ASGI stack always gives a signed-in one)
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    if user._meta.pk.to_python(session.get(SESSION_KEY)) != user.pk:
        return False
    if session.get(BACKEND_SESSION_KEY) not in settings.AUTHENTICATION_BACKENDS:
        return False
    session_hash = session.get(HASH_SESSION_KEY) or ""
    return any(constant_time_compare(session_hash, auth_hash)
               for auth_hash in (user.get_session_auth_hash(), *user.get_session_auth_fallback_hash()))


def _lines_after(job_id: int, after: int) -> list[dict]:
    return list(log_lines(job_id, after=after, limit=BATCH).values("seq", "text"))


def _replay_start(job_id: int) -> int:
    """Where the first replay starts: only the recent history is sent, the rest is a download away."""
    return max(0, log_last_seq(job_id) - settings.TANGO_LOG_REPLAY_LINES)


def _job_state(job_id: int) -> dict | None:
    job = Job.objects.filter(pk=job_id).first()
    if job is None:
        return None
    return {
        "id": job.pk, "stage": job.stage, "status": job.status, "progress": job.progress,
        "progress_message": job.progress_message, "attempt": job.attempt, "error": job.error,
        "finished": job.is_finished, "project_id": job.project_id, "result": job.result,
    }


def _result_template(stage_key: str) -> str:
    try:
        return stage_get(stage_key).result_template
    except KeyError:  # a stage no app registers any more
        return ""


def _catalog_panel_url(stage_key: str) -> str:
    """Where a finished catalog job's panel reloads from: its stage's page (a project job reloads its pipeline)."""
    try:
        page = stage_get(stage_key).page
    except KeyError:
        return ""
    return reverse(page) if page else ""


def _poll(job_id: int, after: int) -> tuple[list[dict], dict | None]:
    return _lines_after(job_id, after), _job_state(job_id)


class _JobPoller:
    """The tick of every viewer of one job in this process: one database read per tick, fanned out.

    Each viewer used to poll on its own: two queries and two hops to Channels' single database thread per viewer
    per tick. With 20 viewers on a 0.1-0.2 s tick that thread was saturated and lines queued behind it (p95 over
    400 ms in bench/log_stream.py). Reading after the slowest viewer's last line serves everyone from one read.
    """

    def __init__(self, job_id: int):
        self.job_id = job_id
        self.viewers: set[JobLogConsumer] = set()
        self.loop = asyncio.get_running_loop()
        self.task = self.loop.create_task(self._run())

    @classmethod
    def join(cls, viewer: "JobLogConsumer") -> "_JobPoller":
        poller = _pollers.get(viewer.job_id)
        # A poller left by another event loop (each test runs its own) cannot serve this one.
        if poller is None or poller.task.done() or poller.loop is not asyncio.get_running_loop():
            poller = _pollers[viewer.job_id] = cls(viewer.job_id)
        poller.viewers.add(viewer)
        return poller

    def leave(self, viewer: "JobLogConsumer") -> None:
        self.viewers.discard(viewer)
        if not self.viewers:
            self.task.cancel()
            if _pollers.get(self.job_id) is self:
                del _pollers[self.job_id]

    async def _run(self):
        checked = self.loop.time()
        while True:
            await asyncio.sleep(settings.TANGO_LOG_POLL_SECONDS)
            try:
                if self.loop.time() - checked >= settings.TANGO_CONSOLE_ACCESS_SECONDS:
                    checked = self.loop.time()
                    await self._close_revoked()
                await self._tick()
            except Exception:  # one failed read must not stop the job's console for every viewer
                logger.exception("log poll of job %s failed", self.job_id)

    async def _close_revoked(self):
        """Close the sockets of viewers who may no longer see the job (one read of the users for all of them, one
        session read per viewer)."""
        viewers = list(self.viewers)
        allowed = await database_sync_to_async(_viewers_allowed)(self.job_id, {v.signed_in_as for v in viewers})
        for viewer in viewers:
            if viewer.signed_in_as not in allowed:
                await viewer.revoke()
                self.leave(viewer)  # after revoke: leaving last cancels this task

    async def _tick(self):
        after = None
        while self.viewers:
            viewers = list(self.viewers)
            if min(v.last_seq for v in viewers) == after:
                return  # a viewer failed to take the last full batch: the next tick retries, no busy loop
            after = min(v.last_seq for v in viewers)
            lines, state = await database_sync_to_async(_poll)(self.job_id, after)
            await asyncio.gather(*(v.tick(lines, state) for v in viewers), return_exceptions=True)
            if len(lines) < BATCH:
                return


_pollers: dict[int, _JobPoller] = {}


class JobLogConsumer(AsyncWebsocketConsumer):
    """While the channel layer (Redis) is down the console degrades to the database tick: the handshake still
    succeeds, lines still arrive (at the tick's pace), and pushes resume by themselves once Redis is back."""

    # channels' AsyncConsumer.__call__ assigns the layer's receive here and then awaits it for the consumer's
    # whole life; an unreachable Redis made that await raise, which ended the socket (a 500 during a handshake).
    @property
    def channel_receive(self):
        return self._receive_from_layer

    @channel_receive.setter
    def channel_receive(self, raw_receive):
        self._raw_channel_receive = raw_receive

    async def _receive_from_layer(self):
        while True:
            if self._layer_down and not await self._subscribe():
                await asyncio.sleep(LAYER_RETRY_SECONDS)
                continue
            try:
                return await self._raw_channel_receive()
            except Exception as exc:  # redis-py's errors share no base with the builtin ConnectionError
                self._layer_lost(exc)

    async def _subscribe(self) -> bool:
        if not hasattr(self, "group"):
            return False  # connect() has not run yet (or refused the socket)
        try:
            await self.channel_layer.group_add(self.group, self.channel_name)
        except Exception as exc:
            self._layer_lost(exc)
            return False
        if self._layer_down:
            logger.info("channel layer back: job %s console streams pushes again", self.job_id)
        self._layer_down = False
        return True

    def _layer_lost(self, exc: Exception) -> None:
        if not self._layer_down:
            logger.warning("channel layer unreachable (%s): job %s console falls back to the database tick", exc,
                           getattr(self, "job_id", "?"))
        self._layer_down = True

    _layer_down = False
    revoked = False  # access withdrawn while open: nothing more is sent

    async def connect(self):
        self.job_id = int(self.scope["url_route"]["kwargs"]["job_id"])
        user = self.scope.get("user")
        job = await database_sync_to_async(_viewable_job)(user, self.job_id)
        if job is None:
            await self.close(code=REFUSED)  # before accept: the handshake is refused
            return
        # Who the socket is, to the periodic check: the user and the session that signed them in (channels'
        # AuthMiddlewareStack put both in the scope).
        self.signed_in_as = (user.pk, getattr(self.scope.get("session"), "session_key", None))
        query = parse_qs(self.scope.get("query_string", b"").decode())
        self.as_json = query.get("format") == ["json"]
        after = query.get("after", ["0"])[0]
        self.last_seq = int(after) if after.isdigit() else 0
        self.sent_state = None
        # The status the page was rendered with: if the job has finished since, the page must refresh its panel.
        self.page_status = query.get("seen", [""])[0]
        self.lock = asyncio.Lock()
        self.group = job_group(self.job_id)
        await self._subscribe()  # subscribe first (or fall back to the tick if the layer is down)…
        await self.accept()
        async with self.lock:
            await self._replay()  # …then replay…
            await self._send_state()
        self.poller = _JobPoller.join(self)  # …then stream

    async def disconnect(self, code):
        if hasattr(self, "poller"):
            self.poller.leave(self)
        if hasattr(self, "group") and not self._layer_down:
            try:
                await self.channel_layer.group_discard(self.group, self.channel_name)
            except Exception as exc:  # the group's key expires by itself
                self._layer_lost(exc)

    async def revoke(self):
        """The user may no longer watch this job: close as connect refuses, under the lock so no send is mid-way."""
        async with self.lock:
            self.revoked = True
            await self.close(code=REFUSED)

    async def receive(self, text_data=None, bytes_data=None):
        pass  # the console is read-only

    # --- group messages ---

    async def log_lines(self, event):
        async with self.lock:
            await self._send_fresh(event["lines"])

    async def job_state(self, event):
        async with self.lock:
            await self._catch_up()
            await self._send_state()

    # --- delivery ---

    async def tick(self, lines, state):
        """The shared poller's read: the lines this viewer has not shown yet, and the job's state."""
        async with self.lock:
            await self._send_fresh(lines)
            await self._send_state(state)

    async def _send_fresh(self, lines):
        fresh = [line for line in lines if line["seq"] > self.last_seq]
        if not fresh:
            return
        if fresh[0]["seq"] != self.last_seq + 1:
            await self._catch_up()  # a push was lost: the database has the missing lines
        else:
            await self._send_lines(fresh)

    async def _replay(self):
        skipped = 0
        if self.last_seq == 0:
            start = await database_sync_to_async(_replay_start)(self.job_id)
            skipped, self.last_seq = start, start
        lines = await database_sync_to_async(_lines_after)(self.job_id, self.last_seq)
        await self._send_lines(lines, replace=not self.as_json, skipped=skipped)
        await self._catch_up()

    async def _catch_up(self):
        while True:
            lines = await database_sync_to_async(_lines_after)(self.job_id, self.last_seq)
            if not lines:
                return
            await self._send_lines(lines)
            if len(lines) < BATCH:
                return

    async def _send_lines(self, lines, replace=False, skipped=0):
        if self.revoked or (not lines and not replace):
            return
        if lines:
            self.last_seq = lines[-1]["seq"]
        if self.as_json:
            await self.send(json.dumps({"type": "lines", "lines": lines, "skipped": skipped}))
        else:
            context = {"job_id": self.job_id, "lines": lines, "replace": replace, "skipped": skipped}
            await self.send(render_to_string("projects/_log_lines.html", context))

    async def _send_state(self, state=None):
        if self.revoked:
            return
        if state is None:
            state = await database_sync_to_async(_job_state)(self.job_id)
        if state is None or state == self.sent_state:
            return
        if not self.as_json and self.sent_state is None and state["finished"] and state["status"] == self.page_status:
            # The page already shows this finished job, drawn with what its card needs beyond the job (the project,
            # the viewer's role, a CSRF token for its forms). Drawn again here without them, the recommendation's
            # model choice, the Try links and the searches' Adopt buttons vanished a moment after every page load.
            self.sent_state = state
            return
        was_finished = self.sent_state["finished"] if self.sent_state else self.page_status in FINISHED_STATUSES
        finished_now = state["finished"] and not was_finished
        self.sent_state = state
        if self.as_json:
            await self.send(json.dumps({"type": "state", **state}))
        else:
            # When a job ends, the pipeline panel reloads itself: buttons change and automatic mode may
            # have queued the next stage.
            refresh = finished_now
            # Rendered off the event loop: a result card may read the database (deployment's stored_artifact).
            await self.send(await database_sync_to_async(render_to_string)("projects/_job_state.html", {
                "job": state, "refresh": refresh, "result_template": _result_template(state["stage"]),
                "catalog_panel_url": _catalog_panel_url(state["stage"]) if state["project_id"] is None else ""}))
