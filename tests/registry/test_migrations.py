"""The registry's migration creates exactly the tables the models declare (the registry's among them)."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

from quayside.db import migrate
from quayside.db.base import Base
from quayside.db.engine import get_engine
from tests.db import test_migrations as db_migrations
from tests.db.test_migrations import import_every_components_tables

# An empty database on SQLite and on PostgreSQL, one per test.
empty_database_url = db_migrations.empty_database_url

SLO = "p95_ms<=25,error_rate<=0.001"


def test_head_holds_the_registry_tables_and_matches_the_models(database_url):
    assert "registry" in import_every_components_tables()
    engine = get_engine(database_url)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0008_build_records"} == migrate.head_revisions()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"registered_models", "registered_model_tags", "model_versions", "model_aliases"} <= tables
    assert {"registry_audit_log", "registry_policies", "loadtest_reports"} <= tables


def _database_of_the_identity_release(url: str) -> None:
    """Migrate an empty database to 0004 and fill it as that release would have: a model with an SLO tag."""
    engine = create_engine(url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0004_identity")
        connection.commit()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO registered_models (name, description, allow_multiple_production, "
                "last_version, created_at, updated_at) VALUES ('iris', '', false, 1, 1, 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO registered_model_tags (model_id, key, value) "
                "VALUES (1, 'quayside.slo', :slo), (1, 'team', 'ml')"
            ),
            {"slo": SLO},
        )
        connection.execute(
            text(
                "INSERT INTO model_versions (model_id, version, stage, lifecycle, digest, flavor, "
                "signature, onnx_servable, source_run_id, source, storage_path, description, "
                "created_at, updated_at) VALUES (1, 1, 'production', 'active', :digest, 'sklearn', "
                "'{}', false, NULL, '/tmp/iris', 'models/iris/1', '', 1, 1)"
            ),
            {"digest": "0" * 64},
        )
        connection.execute(
            text(
                "INSERT INTO registry_audit_log (model, version, action, alias, from_value, to_value, "
                "actor, timestamp, reason, evidence) VALUES ('iris', 1, 'transition', NULL, 'staging', "
                "'production', 'alice', 2, 'ship it', '{}')"
            )
        )
    engine.dispose()


def test_a_database_of_the_previous_release_gets_a_policy_with_its_slo_and_keeps_its_versions(
    empty_database_url: str,
):
    _database_of_the_identity_release(empty_database_url)
    engine = create_engine(empty_database_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions() == {"0008_build_records"}
        policies = connection.execute(text("SELECT * FROM registry_policies")).mappings().all()
        assert len(policies) == 1
        policy = dict(policies[0])
        assert policy.pop("updated_at") > 1_700_000_000_000  # the time of the migration, in ms
        assert policy == {
            "model_id": 1,
            "protected_stages": '["production"]',
            "protected_aliases": "[]",
            "slo": SLO,
            "max_report_age_s": 604800,
            "min_users": 1,
            "min_duration_s": 10.0,
            "require_image": False,
            "budget": None,
            "require_build": False,
            "updated_by": "migration 0005_promotion_policy",
        }
        # The policy is the one place the SLO lives now; the model's other tags stay.
        tags = connection.execute(text("SELECT key, value FROM registered_model_tags")).all()
        assert [tuple(tag) for tag in tags] == [("team", "ml")]
        assert connection.execute(text("SELECT stage FROM model_versions")).scalar_one() == "production"
        audit = connection.execute(text("SELECT reason, override FROM registry_audit_log")).one()
        assert audit.reason == "ship it"
        assert audit.override is not None and not audit.override  # false (0 on SQLite)
    engine.dispose()


def test_downgrading_puts_the_slo_back_as_a_tag(empty_database_url: str):
    _database_of_the_identity_release(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0005_promotion_policy")
        connection.commit()
        command.downgrade(migrate.alembic_config(connection), "0004_identity")
        connection.commit()
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0004_identity"}
        tags = connection.execute(text("SELECT key, value FROM registered_model_tags ORDER BY key")).all()
        assert [tuple(tag) for tag in tags] == [("quayside.slo", SLO), ("team", "ml")]
    inspector = inspect(engine)
    assert not {"registry_policies", "loadtest_reports"} & set(inspector.get_table_names())
    assert "override" not in {column["name"] for column in inspector.get_columns("registry_audit_log")}
    assert {index["name"] for index in inspector.get_indexes("registry_audit_log")} == {
        "ix_registry_audit_log_model"
    }
    engine.dispose()


def _database_of_the_version_tags_release(url: str) -> None:
    """Migrate an empty database to 0007 and give it a model with a version and a promotion policy."""
    engine = create_engine(url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0007_model_version_tags")
        connection.commit()
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO registered_models (name, description, allow_multiple_production, "
                "last_version, created_at, updated_at) VALUES ('iris', '', false, 1, 1, 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO registry_policies (model_id, protected_stages, protected_aliases, slo, "
                "max_report_age_s, min_users, min_duration_s, require_image, updated_at, updated_by) "
                "VALUES (1, '[\"production\"]', '[\"champion\"]', :slo, 3600, 4, 30.0, true, 5, 'alice')"
            ),
            {"slo": SLO},
        )
    engine.dispose()


def test_a_policy_of_the_previous_release_keeps_its_values_with_no_budget_and_no_build_required(
    empty_database_url: str, tmp_path: Path
):
    from quayside.registry.policy import PromotionPolicy
    from quayside.registry.store import RegistryStore

    _database_of_the_version_tags_release(empty_database_url)
    engine = create_engine(empty_database_url)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0008_build_records"}
        row = connection.execute(text("SELECT budget, require_build, slo FROM registry_policies")).one()
        assert (row.budget, bool(row.require_build), row.slo) == (None, False, SLO)
        assert connection.execute(text("SELECT count(*) FROM build_records")).scalar() == 0
    engine.dispose()

    store = RegistryStore(empty_database_url, tmp_path / "artifacts")
    assert store.get_policy("iris") == PromotionPolicy(
        protected_stages=("production",),
        protected_aliases=("champion",),
        slo=SLO,
        max_report_age_s=3600,
        min_users=4,
        min_duration_s=30.0,
        require_image=True,
        budget=None,
        require_build=False,
        updated_at=5,
        updated_by="alice",
    )
    store.engine.dispose()


def test_downgrading_drops_the_build_records_and_keeps_the_policy(empty_database_url: str):
    _database_of_the_version_tags_release(empty_database_url)
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0008_build_records")
        connection.commit()
        command.downgrade(migrate.alembic_config(connection), "0007_model_version_tags")
        connection.commit()
    inspector = inspect(engine)
    assert "build_records" not in inspector.get_table_names()
    columns = {column["name"] for column in inspector.get_columns("registry_policies")}
    assert not {"budget", "require_build"} & columns and "require_image" in columns
    with engine.connect() as connection:
        assert connection.execute(text("SELECT slo FROM registry_policies")).scalar_one() == SLO
    engine.dispose()
