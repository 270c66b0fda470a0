"""Alembic migrations, run programmatically from inside the package: no ``alembic.ini`` to ship.

:func:`upgrade` brings a database to the newest revision and is cheap when it is
already there. Processes that start together on a new database take turns: a file
lock beside a SQLite database, an advisory lock on PostgreSQL.
"""

from __future__ import annotations

import fcntl
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, Engine, MetaData, text

from quayside.errors import InvalidStateError

MIGRATIONS = Path(__file__).parent / "migrations"
# Any constant works; it only has to be the same in every Quayside process.
POSTGRES_LOCK_KEY = 0x51_5A_5944  # "QZYD"


def alembic_config(connection: Connection | None = None, metadata: MetaData | None = None) -> Config:
    """An Alembic configuration pointing at the packaged migrations, handing env.py a connection."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.attributes["connection"] = connection
    config.attributes["target_metadata"] = metadata
    return config


def head_revisions() -> set[str]:
    return set(ScriptDirectory.from_config(alembic_config()).get_heads())


def current_revisions(connection: Connection) -> set[str]:
    return set(MigrationContext.configure(connection).get_current_heads())


def _check_known(current: set[str]) -> None:
    script = ScriptDirectory.from_config(alembic_config())
    known = {revision.revision for revision in script.walk_revisions()}
    unknown = current - known
    if unknown:
        raise InvalidStateError(
            f"the database schema is at revision {', '.join(sorted(unknown))}, which this Quayside "
            "does not know: it was written by a newer version; upgrade quayside"
        )


@contextmanager
def _sqlite_file_lock(engine: Engine) -> Iterator[None]:
    database = engine.url.database
    if not database or database == ":memory:":
        yield
        return
    lock_path = Path(database).expanduser().with_name(Path(database).name + ".migrate.lock")
    with lock_path.open("a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def upgrade(engine: Engine) -> None:
    """Migrate the database to head, unless it is there already."""
    heads = head_revisions()
    with engine.connect() as connection:
        current = current_revisions(connection)
    if current == heads:
        return
    _check_known(current)
    if engine.dialect.name == "sqlite":
        with _sqlite_file_lock(engine), engine.connect() as connection:
            command.upgrade(alembic_config(connection), "head")
            connection.commit()
        return
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":
            # Held until this connection's transaction ends, i.e. after the migration commits.
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": POSTGRES_LOCK_KEY})
        command.upgrade(alembic_config(connection), "head")
        connection.commit()


def new_revision(message: str, metadata: MetaData | None = None) -> None:
    """Autogenerate a revision from the difference between the tables and head (a developer tool).

    Import every component's ``tables`` module first so that ``Base.metadata`` holds all tables.
    """
    from sqlalchemy import create_engine

    from quayside.db.base import Base

    engine = create_engine("sqlite://")
    with engine.connect() as connection:
        command.upgrade(alembic_config(connection), "head")
        command.revision(
            alembic_config(connection, metadata or Base.metadata), message=message, autogenerate=True
        )
