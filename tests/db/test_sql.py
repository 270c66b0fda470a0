"""The SQL vocabulary both stores share: lifecycle states stored as their values, ON CONFLICT inserts per dialect."""

from __future__ import annotations

import uuid

from sqlalchemy import create_mock_engine, select, text
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from quayside.db.engine import get_engine
from quayside.db.sql import Lifecycle, now_ms, on_conflict_insert
from quayside.tracking.tables import ExperimentRow


def test_lifecycle_states_are_stored_as_the_strings_the_databases_already_hold(database_url: str):
    live, gone = f"live-{uuid.uuid4().hex}", f"gone-{uuid.uuid4().hex}"
    with Session(get_engine(database_url)) as session, session.begin():
        session.add(ExperimentRow(name=live, created_at=now_ms()))
        session.add(ExperimentRow(name=gone, lifecycle=Lifecycle.DELETED, created_at=now_ms()))
    with get_engine(database_url).connect() as connection:
        stored = dict(
            connection.execute(
                text("SELECT name, lifecycle FROM experiments WHERE name IN (:live, :gone)"),
                {"live": live, "gone": gone},
            ).all()
        )
    assert stored == {live: "active", gone: "deleted"}
    with Session(get_engine(database_url)) as session:
        query = select(ExperimentRow.name).where(ExperimentRow.lifecycle == Lifecycle.ACTIVE)
        assert live in set(session.scalars(query)) and gone not in set(session.scalars(query))


def test_on_conflict_insert_is_the_dialects_own_and_none_where_the_dialect_has_no_on_conflict(
    database_url: str,
):
    with Session(get_engine(database_url)) as session:
        statement = on_conflict_insert(session, ExperimentRow)
        expected = postgresql.Insert if database_url.startswith("postgresql") else sqlite.Insert
        assert isinstance(statement, expected)
    mysql = create_mock_engine("mysql://", executor=lambda *_: None)
    assert on_conflict_insert(Session(bind=mysql), ExperimentRow) is None  # type: ignore[arg-type]
