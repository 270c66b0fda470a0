"""Engines, one per database URL per process, migrated to head on first use.

SQLite gets WAL (readers never wait for the writer), a busy timeout (writers queue
instead of failing) and foreign keys. Write transactions start with ``BEGIN IMMEDIATE``
so that a transaction which reads before it writes cannot be refused the write lock
half-way; read transactions stay deferred and run beside the writer.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DataError, InterfaceError, NoSuchModuleError, OperationalError
from sqlalchemy.orm import Session

from quayside.db import migrate
from quayside.errors import UnavailableError, UsageError

SQLITE_BUSY_TIMEOUT_MS = 30_000
WRITE_OPTION = "quayside_write"

_engines: dict[str, Engine] = {}
_lock = threading.Lock()


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transaction starts (pysqlite's own are deferred only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _create(url: str) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"QUAYSIDE_DB_URL is not a database URL: '{redact(url)}'") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
            engine = create_engine(parsed)
            _configure_sqlite(engine)
            return engine
        return create_engine(parsed, pool_pre_ping=True)
    except NoSuchModuleError:
        raise UsageError(f"no SQLAlchemy dialect for '{redact(url)}'") from None
    except ModuleNotFoundError as e:
        raise UsageError(
            f"the database driver '{e.name}' is not installed for '{redact(url)}' "
            "(PostgreSQL: pip install 'quayside[postgres]')"
        ) from None


def get_engine(url: str) -> Engine:
    """The process's engine for ``url``, its schema upgraded to the newest revision."""
    with _lock:
        engine = _engines.get(url)
        if engine is not None:
            return engine
        engine = _create(url)
        try:
            migrate.upgrade(engine)
        except OperationalError as e:
            engine.dispose()
            raise UnavailableError(
                f"cannot open the database at {redact(url)}: {describe_operational_error(e)}"
            ) from None
        _engines[url] = engine
        return engine


def _forget_engines_in_child() -> None:
    """After fork: the parent's pooled connections belong to the parent; never use or close them here."""
    for engine in _engines.values():
        engine.dispose(close=False)
    _engines.clear()


os.register_at_fork(after_in_child=_forget_engines_in_child)


def dispose_all() -> None:
    """Close every pooled connection (tests that drop databases call this first)."""
    with _lock:
        for engine in _engines.values():
            engine.dispose()
        _engines.clear()


def describe_operational_error(error: OperationalError) -> str:
    """The driver's first line, which names the cause (refused connection, locked file), without SQL."""
    text = str(error.orig) if error.orig is not None else str(error)
    return text.strip().splitlines()[0] if text.strip() else type(error.orig).__name__


@contextmanager
def read_session(engine: Engine) -> Iterator[Session]:
    """A session for reading; no write lock is taken."""
    with Session(engine, expire_on_commit=False) as session:
        yield session


@contextmanager
def write_session(engine: Engine) -> Iterator[Session]:
    """A session whose transaction commits on success and holds the write lock from its start."""
    with engine.connect() as connection:
        connection = connection.execution_options(**{WRITE_OPTION: True})
        with Session(bind=connection, expire_on_commit=False) as session, session.begin():
            yield session


class Sessions:
    """Read and write sessions on one database, with the driver's errors turned into Quayside's.

    ``what`` names the database in messages ("tracking", "registry"); ``data_hint`` says
    which values a store keeps in bounded columns, for the error a too-large value gets.
    """

    def __init__(self, url: str, what: str, *, data_hint: str = "") -> None:
        self.url = url
        self.what = what
        self.data_hint = data_hint
        self.engine = get_engine(url)

    @contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as e:
            raise UnavailableError(
                f"the {self.what} database at {redact(self.url)} is unavailable: {describe_operational_error(e)}"
            ) from None
        except DataError:
            hint = f" ({self.data_hint})" if self.data_hint else ""
            raise UsageError(
                f"a value is out of range or of the wrong type for the {self.what} database{hint}"
            ) from None
        except InterfaceError as e:
            raise UnavailableError(
                f"lost the connection to the {self.what} database at {redact(self.url)}"
            ) from e

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.translated(), read_session(self.engine) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.translated(), write_session(self.engine) as session:
            yield session
