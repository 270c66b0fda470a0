"""The registry's migration creates exactly the tables the registry's models declare."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect

import quayside.registry.tables
import quayside.tracking.tables  # noqa: F401
from quayside.db import migrate
from quayside.db.base import Base
from quayside.db.engine import get_engine


def test_head_holds_the_registry_tables_and_matches_the_models(database_url):
    engine = get_engine(database_url)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0003_mlflow_compat"} == migrate.head_revisions()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"registered_models", "registered_model_tags", "model_versions", "model_aliases"} <= tables
    assert "registry_audit_log" in tables
