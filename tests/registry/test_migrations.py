"""The registry's migration creates exactly the tables the models declare (the registry's among them)."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

from quayside.db import migrate
from quayside.db.base import Base
from quayside.db.engine import get_engine
from tests.db.test_migrations import import_every_components_tables


def test_head_holds_the_registry_tables_and_matches_the_models(database_url):
    assert "registry" in import_every_components_tables()
    engine = get_engine(database_url)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0004_identity"} == migrate.head_revisions()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"registered_models", "registered_model_tags", "model_versions", "model_aliases"} <= tables
    assert "registry_audit_log" in tables
