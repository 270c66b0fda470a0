"""Engines: SQLite set up for concurrent use, any URL through QUAYSIDE_DB_URL, clear errors for bad ones."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text

from quayside.config import Settings
from quayside.db.engine import DatabaseTimeouts, get_engine
from quayside.errors import UnavailableError, UsageError


def test_the_default_database_is_sqlite_under_quayside_home(tmp_path: Path):
    settings = Settings(home=tmp_path / "home")
    assert settings.database_url == f"sqlite:///{tmp_path / 'home' / 'quayside.db'}"
    assert settings.artifact_dir == tmp_path / "home" / "artifacts"
    get_engine(settings.database_url)
    assert (tmp_path / "home" / "quayside.db").is_file()


def test_sqlite_uses_wal_a_busy_timeout_and_foreign_keys(tmp_path: Path):
    engine = get_engine(f"sqlite:///{tmp_path / 'q.db'}")
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == Settings().db_lock_timeout_s * 1000
        assert connection.execute(text("PRAGMA foreign_keys")).scalar() == 1


def test_the_lock_and_connection_timeouts_come_from_the_settings(tmp_path: Path):
    settings = Settings(home=tmp_path, db_lock_timeout_s=1.5, db_connection_timeout_s=0.5)
    engine = get_engine(settings.database_url, DatabaseTimeouts.from_settings(settings))
    with engine.connect() as connection:
        assert connection.execute(text("PRAGMA busy_timeout")).scalar() == 1500
    assert engine.pool.timeout() == 0.5


def test_postgresql_through_a_url(postgres_database_url: str):
    with get_engine(postgres_database_url).connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM experiments")).scalar() >= 0


def test_an_unreachable_database_is_unavailable_and_only_the_detail_names_it():
    with pytest.raises(UnavailableError) as caught:
        get_engine("postgresql+psycopg://quayside:s3cret@127.0.0.1:1/nothing")
    assert caught.value.message == "cannot open the database; retry later"
    assert caught.value.detail is not None
    assert caught.value.detail.startswith("postgresql+psycopg://quayside:***@127.0.0.1:1/nothing: ")
    assert "postgresql+psycopg://quayside:***@127.0.0.1:1/nothing" in str(caught.value)  # what the CLI prints
    assert "s3cret" not in str(caught.value)


def test_a_url_that_is_not_one_is_a_usage_error():
    with pytest.raises(UsageError, match="not a database URL"):
        get_engine("not a url")
    with pytest.raises(UsageError, match="no SQLAlchemy dialect"):
        get_engine("nosuchdb://x/y")
