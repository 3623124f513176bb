"""kombu's SQLAlchemy transport, fitted to the embedded broker: why each change, in tango_site/broker.py."""

import fcntl
import json
import os
import threading
from queue import Empty

from kombu.transport import sqlalchemy as kombu_sqla
from kombu.utils.encoding import bytes_to_str
from sqlalchemy import create_engine, event, text
from sqlalchemy.orm import sessionmaker

from .broker import BUSY_TIMEOUT_SECONDS, sqlite_path

_LOCK = threading.RLock()


def _engine(url: str):
    engine = create_engine(url, connect_args={"timeout": BUSY_TIMEOUT_SECONDS})

    @event.listens_for(engine, "connect")
    def _pragmas(dbapi_connection, _record):
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_SECONDS * 1000)}")
        cursor.execute("PRAGMA journal_mode = WAL")
        # NORMAL, as for the portal's own database: a commit survives any process crash (what tore messages before);
        # only a power cut can lose the last ones, and then it loses the jobs' rows as well.
        cursor.execute("PRAGMA synchronous = NORMAL")
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
                path = sqlite_path(url)
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
