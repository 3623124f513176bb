"""The embedded broker (tango_site/broker.py) never tears or loses a message, and never hands one out twice: several
processes publish and several consume the same queue at once, and a publisher killed in the middle of its work
leaves only whole messages behind (kombu issue 1551: the filesystem broker let a reader see a half-written file,
and the worker died on JSONDecodeError)."""

import multiprocessing
import os
import signal
import time
from queue import Empty

from kombu import Connection

from tango_site.broker import TRANSPORT, embedded_broker, waiting_task_ids

BIG = "x" * 50_000  # a large body: a torn write would be easy to catch


def connect(data_dir) -> Connection:
    settings = embedded_broker(data_dir)
    return Connection(settings["CELERY_BROKER_URL"], transport=settings["CELERY_BROKER_TRANSPORT"],
                      transport_options=settings["CELERY_BROKER_TRANSPORT_OPTIONS"])


def publish(data_dir, producer: int, count: int) -> None:
    with connect(data_dir) as conn:
        queue = conn.SimpleQueue("jobs")
        for n in range(count):
            queue.put({"producer": producer, "n": n, "body": BIG})
        queue.close()


def consume(data_dir, results, done, total: int, patience: float = 30.0) -> None:
    """Take messages until `done` (shared by all consumers) reaches total, or none came for `patience` s."""
    taken = []
    with connect(data_dir) as conn:
        queue = conn.SimpleQueue("jobs")
        quiet_since = time.monotonic()
        while done.value < total and time.monotonic() - quiet_since < patience:
            try:
                message = queue.get(timeout=0.2)
            except Empty:
                continue
            quiet_since = time.monotonic()
            with done.get_lock():
                done.value += 1
            payload = message.payload  # a torn message would fail to decode here
            assert payload["body"] == BIG
            taken.append((payload["producer"], payload["n"]))
            message.ack()
        queue.close()
    results.put(taken)


def test_concurrent_producers_and_consumers_get_every_message_once_and_whole(tmp_path):
    ctx = multiprocessing.get_context("fork")
    results, done = ctx.Queue(), ctx.Value("i", 0)
    consumers = [ctx.Process(target=consume, args=(tmp_path, results, done, 90)) for _ in range(3)]
    producers = [ctx.Process(target=publish, args=(tmp_path, p, 30)) for p in range(3)]
    for process in consumers + producers:
        process.start()
    for process in producers:
        process.join(60)
        assert process.exitcode == 0
    taken = [item for _ in consumers for item in results.get(timeout=60)]
    for process in consumers:
        process.join(30)
        assert process.exitcode == 0
    assert sorted(taken) == [(p, n) for p in range(3) for n in range(30)], "every message once"


def publish_forever(data_dir) -> None:
    with connect(data_dir) as conn:
        queue = conn.SimpleQueue("jobs")
        n = 0
        while True:
            queue.put({"producer": 0, "n": n, "body": BIG})
            n += 1


def test_a_publisher_killed_mid_write_leaves_only_whole_messages(tmp_path):
    ctx = multiprocessing.get_context("fork")
    writer = ctx.Process(target=publish_forever, args=(tmp_path,))
    writer.start()
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not (tmp_path / "broker.sqlite3").exists():
        time.sleep(0.05)
    time.sleep(1.0)  # many puts in, and one in progress when the kill comes
    os.kill(writer.pid, signal.SIGKILL)
    writer.join(10)

    results = ctx.Queue()
    consume(tmp_path, results, ctx.Value("i", 0), total=10**9, patience=1.0)
    taken = results.get(timeout=10)
    assert taken, "the writer got some messages in"
    assert [n for _, n in taken] == list(range(len(taken))), "in order, none torn, none missing before the kill"


def test_the_reaper_can_see_which_tasks_wait_in_the_embedded_broker(tmp_path, settings):
    broker = embedded_broker(tmp_path)
    for name, value in broker.items():
        setattr(settings, name, value)
    assert broker["CELERY_BROKER_TRANSPORT"] == TRANSPORT
    assert waiting_task_ids("cpu") == set()  # nothing ever queued: no file yet

    with connect(tmp_path) as conn:
        producer = conn.Producer()
        for task_id in ("a", "b"):
            producer.publish({"args": []}, routing_key="cpu", headers={"id": task_id},
                             declare=[conn.SimpleQueue("cpu").queue])
    assert waiting_task_ids("cpu") == {"a", "b"}
    assert waiting_task_ids("gpu") == set()

    settings.CELERY_BROKER_TRANSPORT = None  # Redis: the broker cannot be asked
    assert waiting_task_ids("cpu") is None
