"""The job console websocket: who may connect, replay-then-stream ordering without loss or duplicates, and who is
closed out once their access (or their session) ends. Sockets connect as the site's do: through channels'
AuthMiddlewareStack, signed in by a real session's cookie."""

import asyncio
import json

import pytest
from asgiref.sync import async_to_sync
from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings as django_settings
from django.contrib.auth.models import AnonymousUser
from django.test import Client
from django.urls import reverse

from projects.jobs import consumer as consumers
from projects.jobs.log import JobLog, job_group
from projects.jobs.models import Job
from projects.jobs.routing import websocket_urlpatterns
from projects.services import membership_remove
from projects.tests import factories

pytestmark = pytest.mark.django_db(transaction=True)

app = AuthMiddlewareStack(URLRouter(websocket_urlpatterns))  # tango_site.asgi's stack, less the origin check


@pytest.fixture
def people_and_job(db):
    team = factories.team_with("Vision", alice="owner", carol="viewer")
    factories.team_with("Other", dave="owner")
    project = factories.project(team)
    job = Job.objects.create(project=project, stage="recommend", queue="cpu")
    return {u.username: u for u in team.members.all()} | {"dave": factories.get_user_model().objects.get(
        username="dave")}, job


@database_sync_to_async
def signed_in(user) -> Client:
    """A browser signed in as the user: a real session in the store, its key in the browser's cookie."""
    browser = Client()
    browser.force_login(user)
    return browser


async def connect(user, job, query="", browser=None):
    """Open the job's console from `browser` (by default a browser of its own signed in as `user`; an anonymous
    visitor has no session)."""
    if browser is None and user.is_authenticated:
        browser = await signed_in(user)
    name = django_settings.SESSION_COOKIE_NAME
    cookie = f"{name}={browser.cookies[name].value}" if browser else ""
    communicator = WebsocketCommunicator(app, f"/ws/jobs/{job.pk}/{query}", headers=[(b"cookie", cookie.encode())])
    # The first handshake opens a database connection: over channels' default 1 s on a busy machine.
    connected, _ = await communicator.connect(timeout=10)
    return communicator, connected


async def receive_lines(communicator, until_seq, timeout=3):
    seqs, texts = [], []
    while not seqs or seqs[-1] < until_seq:
        message = json.loads(await communicator.receive_from(timeout=timeout))
        if message["type"] == "lines":
            seqs += [line["seq"] for line in message["lines"]]
            texts += [line["text"] for line in message["lines"]]
    return seqs, texts


def test_outsiders_and_anonymous_visitors_are_refused(people_and_job):
    async_to_sync(_test_outsiders_and_anonymous_visitors_are_refused)(people_and_job)


async def _test_outsiders_and_anonymous_visitors_are_refused(people_and_job):
    people, job = people_and_job
    for user in (people["dave"], AnonymousUser()):
        communicator, connected = await connect(user, job)
        assert not connected
        await communicator.disconnect()


def test_members_of_any_role_may_watch(people_and_job):
    async_to_sync(_test_members_of_any_role_may_watch)(people_and_job)


async def _test_members_of_any_role_may_watch(people_and_job):
    people, job = people_and_job
    communicator, connected = await connect(people["carol"], job, "?format=json")
    assert connected
    await communicator.disconnect()


def test_history_is_replayed_then_new_lines_stream_in_order(people_and_job, settings):
    async_to_sync(_test_history_is_replayed_then_new_lines_stream_in_order)(people_and_job, settings)


async def _test_history_is_replayed_then_new_lines_stream_in_order(people_and_job, settings):
    settings.TANGO_LOG_POLL_SECONDS = 0.05
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    for i in range(1, 4):
        await _write(log, f"line {i}")
    communicator, connected = await connect(people["alice"], job, "?format=json")
    assert connected
    seqs, texts = await receive_lines(communicator, 3)
    assert seqs == [1, 2, 3] and texts == ["line 1", "line 2", "line 3"]

    await _write(log, "line 4 <b>not html</b>")
    seqs, texts = await receive_lines(communicator, 4)
    assert seqs == [4] and texts == ["line 4 <b>not html</b>"]
    await communicator.disconnect()


def test_a_lost_push_is_refetched_from_the_database(people_and_job, settings):
    async_to_sync(_test_a_lost_push_is_refetched_from_the_database)(people_and_job, settings)


async def _test_a_lost_push_is_refetched_from_the_database(people_and_job, settings):
    settings.TANGO_LOG_POLL_SECONDS = 60  # no tick: only pushes and the gap refetch deliver
    people, job = people_and_job
    communicator, connected = await connect(people["alice"], job, "?format=json")
    assert connected
    log = await database_sync_to_async(JobLog)(job.pk)
    await _write(log, "five", "six")  # persisted, push lost (embedded mode pushes nothing)
    await get_channel_layer().group_send(job_group(job.pk), {"type": "log.lines", "lines": [
        {"seq": 2, "text": "six"}]})
    seqs, texts = await receive_lines(communicator, 2)
    assert seqs == [1, 2] and texts == ["five", "six"]
    # A late duplicate of a line already shown is dropped.
    await get_channel_layer().group_send(job_group(job.pk), {"type": "log.lines", "lines": [
        {"seq": 1, "text": "five"}]})
    assert await communicator.receive_nothing(timeout=0.3)
    await communicator.disconnect()


def test_a_reconnect_resumes_after_the_last_line_seen(people_and_job, settings):
    async_to_sync(_test_a_reconnect_resumes_after_the_last_line_seen)(people_and_job, settings)


async def _test_a_reconnect_resumes_after_the_last_line_seen(people_and_job, settings):
    settings.TANGO_LOG_POLL_SECONDS = 0.05
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    await _write(log, "a", "b", "c")
    communicator, _ = await connect(people["alice"], job, "?format=json&after=2")
    seqs, _ = await receive_lines(communicator, 3)
    assert seqs == [3]
    await communicator.disconnect()


def test_viewers_of_one_job_share_one_poll_and_each_gets_its_lines(people_and_job, settings):
    async_to_sync(_test_viewers_of_one_job_share_one_poll_and_each_gets_its_lines)(people_and_job, settings)


async def _test_viewers_of_one_job_share_one_poll_and_each_gets_its_lines(people_and_job, settings):
    settings.TANGO_LOG_POLL_SECONDS = 0.05
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    await _write(log, "a")
    first, _ = await connect(people["alice"], job, "?format=json")
    second, _ = await connect(people["carol"], job, "?format=json&after=1")
    await _write(log, "b", "c")
    assert (await receive_lines(first, 3))[0] == [1, 2, 3]
    assert (await receive_lines(second, 3))[0] == [2, 3]
    assert list(consumers._pollers) == [job.pk]  # the lines came from one poll for both
    await first.disconnect()
    await second.disconnect()
    assert not consumers._pollers  # the last viewer out stops the job's poll


def test_the_html_console_escapes_log_text_and_replaces_on_replay(people_and_job):
    async_to_sync(_test_the_html_console_escapes_log_text_and_replaces_on_replay)(people_and_job)


async def _test_the_html_console_escapes_log_text_and_replaces_on_replay(people_and_job):
    people, job = people_and_job
    await _write(await database_sync_to_async(JobLog)(job.pk), "<script>alert(1)</script>")
    communicator, _ = await connect(people["alice"], job)
    html = await communicator.receive_from(timeout=3)
    assert 'hx-swap-oob="innerHTML"' in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script>" not in html
    await communicator.disconnect()


async def _write(log, *texts):
    for text in texts:
        await database_sync_to_async(log.write)(text)


async def receive_until_closed(communicator, timeout=3):
    """The messages an open socket gets until the server closes it, and the close code."""
    messages = []
    while True:
        output = await communicator.receive_output(timeout=timeout)
        if output["type"] == "websocket.close":
            return messages, output.get("code")
        messages.append(json.loads(output["text"]))


# --- access ends while the console is open ---------------------------------------------------------------------
# Every way access ends meets the same check (the shared tick's, every TANGO_CONSOLE_ACCESS_SECONDS), so the tests
# share one shape: open a console, end the access one way, see the socket closed with connect's refusal code.


@pytest.fixture
def quick_checks(settings):
    settings.TANGO_LOG_POLL_SECONDS = 0.05
    settings.TANGO_CONSOLE_ACCESS_SECONDS = 0.1


async def assert_closed_out(console):
    """The server closes the socket as connect refuses a stranger (4403), and the job's shared poll lets it go."""
    _, code = await receive_until_closed(console)
    assert code == 4403
    await console.disconnect()


def _deactivate(user, browser):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


def _log_out_in_another_tab(user, browser):
    other_tab = Client()
    other_tab.cookies = browser.cookies  # the same browser: the same session cookie
    assert other_tab.post(reverse("logout")).status_code == 302


def _change_password_on_another_device(user, browser):
    laptop = Client()
    laptop.force_login(user)
    changed = laptop.post(reverse("password_change"), {"old_password": f"pw-{user.username}",
                                                       "new_password1": "a new long passphrase",
                                                       "new_password2": "a new long passphrase"})
    assert changed.status_code == 302, changed.content
    assert laptop.get(reverse("projects:list")).status_code == 200, "the device that changed it stays signed in"


@pytest.mark.parametrize("end_access", [_deactivate, _log_out_in_another_tab, _change_password_on_another_device])
def test_a_console_is_closed_when_its_viewers_access_ends(people_and_job, quick_checks, end_access):
    async_to_sync(_test_a_console_is_closed_when_its_viewers_access_ends)(people_and_job, end_access)


async def _test_a_console_is_closed_when_its_viewers_access_ends(people_and_job, end_access):
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    browser = await signed_in(people["alice"])
    alice, connected = await connect(people["alice"], job, "?format=json", browser=browser)
    carol, _ = await connect(people["carol"], job, "?format=json")
    assert connected
    await database_sync_to_async(end_access)(people["alice"], browser)
    await assert_closed_out(alice)
    # Another viewer, whose access stands, watches on.
    await _write(log, "after alice's access ended")
    assert (await receive_lines(carol, 1))[1] == ["after alice's access ended"]
    await carol.disconnect()
    assert not consumers._pollers


def test_an_ordinary_viewer_stays_connected_through_the_checks(people_and_job, quick_checks):
    async_to_sync(_test_an_ordinary_viewer_stays_connected_through_the_checks)(people_and_job)


async def _test_an_ordinary_viewer_stays_connected_through_the_checks(people_and_job):
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    browser = await signed_in(people["carol"])
    carol, _ = await connect(people["carol"], job, "?format=json", browser=browser)
    # The same browser goes on using the site (its session is read and saved again), and checks go by (ten) …
    assert (await database_sync_to_async(browser.get)(reverse("projects:list"))).status_code == 200
    await asyncio.sleep(1.0)
    # … and the console is still open and streaming (a closed one would answer websocket.close here).
    await _write(log, "still here")
    assert (await receive_lines(carol, 1))[1] == ["still here"]
    await carol.disconnect()


def test_a_member_removed_from_the_team_is_closed_out_and_sent_nothing_more(people_and_job, quick_checks):
    async_to_sync(_test_a_member_removed_from_the_team_is_closed_out)(people_and_job)


async def _test_a_member_removed_from_the_team_is_closed_out(people_and_job):
    people, job = people_and_job
    log = await database_sync_to_async(JobLog)(job.pk)
    await _write(log, "before")
    alice, _ = await connect(people["alice"], job, "?format=json")
    carol, _ = await connect(people["carol"], job, "?format=json")
    assert (await receive_lines(carol, 1))[1] == ["before"]

    await database_sync_to_async(membership_remove)(team=job.project.team, user=people["carol"],
                                                    actor=people["alice"])
    _, code = await receive_until_closed(carol)
    assert code == 4403  # what connect answers a stranger
    await _write(log, "after carol left")
    await get_channel_layer().group_send(job_group(job.pk), {"type": "log.lines", "lines": [
        {"seq": 2, "text": "after carol left"}]})
    assert await carol.receive_nothing(timeout=0.5)
    # The team's remaining member watches on.
    assert (await receive_lines(alice, 2))[1][-1] == "after carol left"
    assert len(consumers._pollers[job.pk].viewers) == 1  # carol left the shared poll
    await carol.disconnect()
    await alice.disconnect()
    assert not consumers._pollers


def test_a_catalog_job_console_closes_when_its_viewer_is_no_longer_staff(people_and_job, quick_checks):
    async_to_sync(_test_a_catalog_job_console_closes_when_its_viewer_is_no_longer_staff)(people_and_job)


async def _test_a_catalog_job_console_closes_when_its_viewer_is_no_longer_staff(people_and_job):
    people, _ = people_and_job
    dave = people["dave"]
    dave.is_staff = True
    await database_sync_to_async(dave.save)()
    catalog_job = await database_sync_to_async(Job.objects.create)(project=None, stage="recommend", queue="cpu")
    console, connected = await connect(dave, catalog_job, "?format=json")
    assert connected
    await database_sync_to_async(type(dave).objects.filter(pk=dave.pk).update)(is_staff=False)
    await assert_closed_out(console)
