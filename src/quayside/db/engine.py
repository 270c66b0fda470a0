"""Engines, one per database URL (and timeouts) per process, migrated to head on first use.

SQLite gets WAL (readers never wait for the writer), a busy timeout (writers queue
instead of failing, up to ``db_lock_timeout_s``) and foreign keys. Write transactions
start with ``BEGIN IMMEDIATE`` so that a transaction which reads before it writes cannot
be refused the write lock half-way; read transactions stay deferred and run beside the writer.

:class:`Sessions` translates the driver's errors. Contention and outages (a locked file,
a pool with no free connection within ``db_connection_timeout_s``, a refused or lost
connection, a serialization failure) are :class:`~quayside.errors.UnavailableError`, a
503 the client may retry. Their messages name the database's role only ("the tracking
database"); the URL and the driver's text go in the error's ``detail``, for the log.
"""

from __future__ import annotations

import math
import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import URL, Connection, Engine, create_engine, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import (
    ArgumentError,
    DataError,
    DBAPIError,
    InterfaceError,
    NoSuchModuleError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlalchemy.orm import Session

from quayside.config import Settings
from quayside.db import migrate
from quayside.errors import UnavailableError, UsageError

WRITE_OPTION = "quayside_write"
# PostgreSQL's SQLSTATEs for a transaction that lost a race and may simply be retried.
_RETRYABLE_SQLSTATES = {"40001": "serialization failure", "40P01": "deadlock"}
# SQLite's refusals of a statement too large to run: the query's fault, so not worth a retry.
_SQLITE_TOO_LARGE = (
    "too many terms",
    "too many sql variables",
    "expression tree is too large",
    "parser stack",
)
_PG_DRIVERS_WITH_CONNECT_TIMEOUT = {"psycopg", "psycopg2"}


@dataclass(frozen=True)
class DatabaseTimeouts:
    """How long a database operation waits before it fails as unavailable (see the settings)."""

    lock_s: float = Settings.model_fields["db_lock_timeout_s"].default
    """A SQLite write's wait for another writer's lock (``db_lock_timeout_s``)."""

    connection_s: float = Settings.model_fields["db_connection_timeout_s"].default
    """The wait for a pooled or a new connection (``db_connection_timeout_s``)."""

    @classmethod
    def from_settings(cls, settings: Settings) -> DatabaseTimeouts:
        return cls(lock_s=settings.db_lock_timeout_s, connection_s=settings.db_connection_timeout_s)


_engines: dict[tuple[str, DatabaseTimeouts], Engine] = {}
_lock = threading.Lock()


def redact(url: str) -> str:
    """The URL with any password hidden, for messages."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except ArgumentError:
        return "<unparseable database URL>"


def _configure_sqlite(engine: Engine, busy_timeout_ms: int) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's "begin" event own transaction starts (pysqlite's own are deferred only).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {busy_timeout_ms}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        write = connection.get_execution_options().get(WRITE_OPTION, False)
        connection.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _create(url: str, timeouts: DatabaseTimeouts) -> Engine:
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise UsageError(f"QUAYSIDE_DB_URL is not a database URL: '{redact(url)}'") from None
    try:
        if parsed.get_backend_name() == "sqlite":
            pooled: dict[str, Any] = {}
            if parsed.database and parsed.database != ":memory:":
                Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                pooled["pool_timeout"] = timeouts.connection_s  # a file gets a QueuePool; :memory: does not
            engine = create_engine(parsed, **pooled)
            _configure_sqlite(engine, busy_timeout_ms=round(timeouts.lock_s * 1000))
            return engine
        return create_engine(
            parsed,
            pool_pre_ping=True,
            pool_timeout=timeouts.connection_s,
            connect_args=_connect_args(parsed, timeouts),
        )
    except NoSuchModuleError:
        raise UsageError(f"no SQLAlchemy dialect for '{redact(url)}'") from None
    except ModuleNotFoundError as e:
        raise UsageError(
            f"the database driver '{e.name}' is not installed for '{redact(url)}' "
            "(PostgreSQL: pip install 'quayside[postgres]')"
        ) from None


def _connect_args(url: URL, timeouts: DatabaseTimeouts) -> dict[str, Any]:
    # libpq's connect_timeout bounds a connect to a host that does not answer (whole seconds, >= 2).
    if url.get_driver_name() in _PG_DRIVERS_WITH_CONNECT_TIMEOUT and "connect_timeout" not in url.query:
        return {"connect_timeout": max(2, math.ceil(timeouts.connection_s))}
    return {}


def get_engine(url: str, timeouts: DatabaseTimeouts | None = None) -> Engine:
    """The process's engine for ``url``, its schema upgraded to the newest revision."""
    key = (url, timeouts or DatabaseTimeouts())
    with _lock:
        engine = _engines.get(key)
        if engine is not None:
            return engine
        engine = _create(url, key[1])
        try:
            migrate.upgrade(engine)
        except (OperationalError, InterfaceError, PoolTimeoutError) as e:
            engine.dispose()
            raise UnavailableError(
                "cannot open the database; retry later", detail=f"{redact(url)}: {_driver_text(e)}"
            ) from None
        _engines[key] = engine
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


def _driver_text(error: Exception) -> str:
    """The driver's first line, which names the cause (refused connection, locked file), without SQL."""
    cause = error.orig if isinstance(error, DBAPIError) and error.orig is not None else error
    text = str(cause).strip()
    return text.splitlines()[0] if text else type(cause).__name__


def _sqlstate(error: DBAPIError) -> str | None:
    return getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)


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
    Messages never name the URL, a host or a path: those go in the error's ``detail``.
    """

    def __init__(
        self, url: str, what: str, *, data_hint: str = "", timeouts: DatabaseTimeouts | None = None
    ) -> None:
        self.url = url
        self.what = what
        self.data_hint = data_hint
        self.timeouts = timeouts or DatabaseTimeouts()
        self.engine = get_engine(url, self.timeouts)

    def _detail(self, error: Exception) -> str:
        return f"{redact(self.url)}: {_driver_text(error)}"

    def _operational(self, error: OperationalError) -> Exception:
        text = _driver_text(error).lower()
        if "locked" in text:
            return UnavailableError(
                f"the {self.what} database is busy (another writer holds its lock); retry later",
                detail=self._detail(error),
            )
        if any(marker in text for marker in _SQLITE_TOO_LARGE):
            return UsageError(f"the query is too large for the {self.what} database; narrow it")
        race = _RETRYABLE_SQLSTATES.get(_sqlstate(error) or "")
        if race is not None:
            return UnavailableError(
                f"the write lost a race with a concurrent one on the {self.what} database ({race}); retry it",
                detail=self._detail(error),
            )
        return UnavailableError(
            f"the {self.what} database is unavailable; retry later", detail=self._detail(error)
        )

    @contextmanager
    def translated(self) -> Iterator[None]:
        try:
            yield
        except OperationalError as e:
            raise self._operational(e) from None
        except PoolTimeoutError as e:
            raise UnavailableError(
                f"the {self.what} database is busy (no connection came free within "
                f"{self.timeouts.connection_s:g} s); retry later",
                detail=self._detail(e),
            ) from None
        except DataError:
            hint = f" ({self.data_hint})" if self.data_hint else ""
            raise UsageError(
                f"a value is out of range or of the wrong type for the {self.what} database{hint}"
            ) from None
        except DBAPIError as e:
            if not isinstance(e, InterfaceError) and not e.connection_invalidated:
                raise
            raise UnavailableError(
                f"lost the connection to the {self.what} database; retry later", detail=self._detail(e)
            ) from None

    def ping(self) -> None:
        """Open a connection and run a trivial query; UnavailableError if the database cannot answer."""
        with self.translated(), self.engine.connect() as connection:
            connection.exec_driver_sql("SELECT 1")

    @contextmanager
    def read(self) -> Iterator[Session]:
        with self.translated(), read_session(self.engine) as session:
            yield session

    @contextmanager
    def write(self) -> Iterator[Session]:
        with self.translated(), write_session(self.engine) as session:
            yield session
