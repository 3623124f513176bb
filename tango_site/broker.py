"""The embedded broker: Celery's messages in a SQLite file ($TANGO_DATA_DIR/broker.sqlite3) when REDIS_URL is unset.

Why not kombu's filesystem transport (what embedded mode used before): it writes each message as a file in the
queue folder, and a worker polling the folder can open a file that the web server is still writing. The worker then
dies with `Unrecoverable error: JSONDecodeError('Expecting value…')` (kombu issue 1551), which took the embedded
portal down and lost the message. Here a put and a get are each one SQLite transaction: a reader sees a whole
message or none, two workers never take the same one (the get holds the write lock, BEGIN IMMEDIATE), and a process
killed in the middle of either leaves the last committed state (WAL journal). No server to start, nothing to install:
SQLAlchemy is already a requirement, and kombu's SQLAlchemy transport does the work (`sqla+sqlite:///…`).

The subclass below changes what matters for a broker that must not lose or tear messages:
- every connection uses the WAL journal, synchronous=FULL and a busy timeout, so the web server publishing and the
  worker polling wait for each other instead of failing with "database is locked";
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

import fcntl
import json
import os
import threading
from pathlib import Path
from queue import Empty

from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import sessionmaker

FILE_NAME = "broker.sqlite3"
BUSY_TIMEOUT_SECONDS = 15.0  # a writer waits this long for the lock before the put (or get) fails
POLLING_INTERVAL_SECONDS = 0.2  # an idle worker looks for a new message this often
TRANSPORT = "tango_site.broker:Transport"


def embedded_broker(data_dir: Path) -> dict:
    """The Celery settings of the embedded broker under data_dir: CELERY_BROKER_URL (the SQLAlchemy URL of the
    database that keeps the messages), CELERY_BROKER_TRANSPORT (this module's transport; kombu takes an import path
    only from that setting, never from a URL) and CELERY_BROKER_TRANSPORT_OPTIONS."""
    path = Path(data_dir).resolve() / FILE_NAME
    return {"CELERY_BROKER_URL": f"sqlite:///{path}", "CELERY_BROKER_TRANSPORT": TRANSPORT,
            "CELERY_BROKER_TRANSPORT_OPTIONS": {"polling_interval": POLLING_INTERVAL_SECONDS}}


def _sqlite_path(url: str) -> Path:
    return Path(url.removeprefix("sqlite:///"))


_LOCK = threading.RLock()


def _engine(url: str):
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = FULL")  # a committed message survives a crash of the machine too
        cursor.close()

    return engine


class Channel(kombu_sqla.Channel):
    _engines: dict = {}  # (url, pid) -> (engine, Session); not the base class's dict, which ignores forks

    def _open(self):
        url = self.connection.client.hostname
        key = (url, os.getpid())
        with _LOCK:
            if key not in self._engines:
                engine = _engine(url)
                path = _sqlite_path(url)
                path.parent.mkdir(parents=True, exist_ok=True)
                with open(path.with_name(path.name + ".lock"), "a") as lock:
                    fcntl.flock(lock, fcntl.LOCK_EX)  # one process creates the tables; the others find them
                    kombu_sqla.metadata.create_all(engine)
                self._engines[key] = engine, sessionmaker(bind=engine)
        return self._engines[key]

    def _get_or_create(self, queue):
        """The queue's row. kombu's version races between processes (two insert the same name, one fails with
        IntegrityError); INSERT OR IGNORE lets every process that declares a queue go on with the one row."""
        query = self.session.query(self.queue_cls).filter(self.queue_cls.name == queue)
        row = query.first()
        if row is None:
            try:
                self.session.execute(text(f"INSERT OR IGNORE INTO {self.queue_tablename} (name) VALUES (:name)"),
                                     {"name": queue})
                self.session.commit()
            except Exception:
                self.session.rollback()
                raise
            row = query.first()
        return row

    def _put(self, queue, payload, **kwargs):
        queue_row = self._get_or_create(queue)
        self.session.add(self.message_cls(json.dumps(payload), queue_row))
        try:
            self.session.commit()
        except Exception:
            self.session.rollback()
            raise  # an OperationalError is a connection error: Celery retries the publish, then reports it

    def _get(self, queue):
        queue_id = self._get_or_create(queue).id
        session = self.session
        message_cls = self.message_cls
        waiting = session.query(message_cls.id).filter(message_cls.queue_id == queue_id,
                                                        message_cls.visible != False)  # noqa: E712
        if waiting.first() is None:  # the common case, an idle queue: a plain read, no write lock
            session.rollback()
            raise Empty()
        session.rollback()  # end the read; the take below starts its own write transaction
        session.execute(text("BEGIN IMMEDIATE"))
        try:
            message = (session.query(message_cls)
                       .filter(message_cls.queue_id == queue_id, message_cls.visible != False)  # noqa: E712
                       .order_by(message_cls.id).first())
            if message is None:
                raise Empty()  # another worker took it first
            payload = message.payload
            session.delete(message)
            session.commit()
        except BaseException:
            session.rollback()
            raise
        return json.loads(bytes_to_str(payload))


class Transport(kombu_sqla.Transport):
    Channel = Channel


def waiting_task_ids(queue: str) -> set[str] | None:
    """Ids of the Celery tasks whose message waits in the embedded broker's queue (None when it cannot tell)."""
    from django.conf import settings

    if getattr(settings, "CELERY_BROKER_TRANSPORT", None) != TRANSPORT:
        return None
    path = _sqlite_path(settings.CELERY_BROKER_URL)
    if not path.exists():
        return set()
    import sqlite3

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
