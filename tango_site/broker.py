"""The embedded broker: Celery's messages in a SQLite file ($TANGO_DATA_DIR/broker.sqlite3) when REDIS_URL is unset.

Why not kombu's filesystem transport (what embedded mode used before): it writes each message as a file in the
queue folder, and a worker polling the folder can open a file that the web server is still writing. The worker then
dies with `Unrecoverable error: JSONDecodeError('Expecting value…')` (kombu issue 1551), which took the embedded
portal down and lost the message. Here a put and a get are each one SQLite transaction: a reader sees a whole
message or none, two workers never take the same one (the get holds the write lock, BEGIN IMMEDIATE), and a process
killed in the middle of either leaves the last committed state (WAL journal). No server to start, nothing to install:
SQLAlchemy is already a requirement, and kombu's SQLAlchemy transport does the work (`sqla+sqlite:///…`).

The subclass (tango_site/broker_transport.py, imported only when a process connects: SQLAlchemy takes a second
to import, and settings.py must stay light) changes what matters for a broker that must not lose or tear messages:
- every connection uses the WAL journal and a busy timeout, so the web server publishing and the worker polling wait
  for each other instead of failing with "database is locked";
- a failed put raises (kombu before 5.7 rolled back and returned, dropping the message silently), so Celery retries
  the publish and, failing that, the job is marked failed with a clear message (projects.jobs.services._dispatch);
- a message is deleted in the transaction that takes it (kombu's keeps every message forever, marked invisible, and
  each poll would scan a growing table); taken-but-unacked messages live in the worker, as with any virtual
  transport, and the reaper re-dispatches a queued job whose worker died holding it (projects.jobs.reaper);
- one engine per process: SQLite connections must not cross a fork (Celery's pool children publish the next stage);
- the tables are created under a file lock, and a queue row with INSERT OR IGNORE (the web server and the worker
  start together, and kombu's own create races: two processes insert the same queue and one fails);
- `polling_interval` is read by the transport, not passed to create_engine.

settings.py calls embedded_broker() and nothing else here; `waiting_task_ids` lets the reaper ask which jobs still
have their message waiting (settings.TANGO_BROKER_WAITING).
"""

import json
import sqlite3
from pathlib import Path

FILE_NAME = "broker.sqlite3"
BUSY_TIMEOUT_SECONDS = 15.0  # a writer waits this long for the lock before the put (or get) fails
POLLING_INTERVAL_SECONDS = 0.2  # an idle worker looks for a new message this often
TRANSPORT = "tango_site.broker_transport:Transport"  # imported by kombu when it connects, not by settings


def embedded_broker(data_dir: Path) -> dict:
    """The Celery settings of the embedded broker under data_dir: CELERY_BROKER_URL (the SQLAlchemy URL of the
    database that keeps the messages), CELERY_BROKER_TRANSPORT (the class in broker_transport.py; kombu takes an
    import path only from that setting, never from a URL) and CELERY_BROKER_TRANSPORT_OPTIONS."""
    path = Path(data_dir).resolve() / FILE_NAME
    return {"CELERY_BROKER_URL": f"sqlite:///{path}", "CELERY_BROKER_TRANSPORT": TRANSPORT,
            "CELERY_BROKER_TRANSPORT_OPTIONS": {"polling_interval": POLLING_INTERVAL_SECONDS}}


def sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


def waiting_task_ids(queue: str) -> set[str] | None:
    """Ids of the Celery tasks whose message waits in the embedded broker's queue (None when it cannot tell)."""
    from django.conf import settings

    if getattr(settings, "CELERY_BROKER_TRANSPORT", None) != TRANSPORT:
        return None
    path = sqlite_path(settings.CELERY_BROKER_URL)
    if not path.exists():
        return set()
    db = sqlite3.connect(path, timeout=BUSY_TIMEOUT_SECONDS)
    try:
        rows = db.execute("SELECT m.payload FROM kombu_message m JOIN kombu_queue q ON m.queue_id = q.id "
                          "WHERE q.name = ? AND m.visible", (queue,)).fetchall()
    except sqlite3.OperationalError:  # no table yet: nothing was ever queued
        return set()
    finally:
        db.close()
    ids = set()
    for (payload,) in rows:
        try:
            ids.add(json.loads(payload)["headers"]["id"])
        except (ValueError, KeyError, TypeError):
            continue
    return ids
