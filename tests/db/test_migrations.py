"""Migrations: an empty database upgrades to head, and head is exactly what the models declare."""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import create_engine, inspect, text

import quayside
from quayside.db import migrate
from quayside.db.base import Base
from quayside.db.engine import get_engine
from quayside.errors import InvalidStateError
from quayside.tracking.store import TrackingStore
from tests.db.fixtures import create_postgres_database, drop_postgres_database, postgres_url


def import_every_components_tables() -> list[str]:
    """Each component declares its tables in ``quayside.<component>.tables``; Base holds them once imported."""
    found = []
    for component in pkgutil.iter_modules(quayside.__path__):
        if importlib.util.find_spec(f"quayside.{component.name}.tables") if component.ispkg else None:
            importlib.import_module(f"quayside.{component.name}.tables")
            found.append(component.name)
    return found


@pytest.fixture(params=["sqlite", "postgresql"])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path):
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'empty.db'}"
        return
    name = create_postgres_database()
    yield postgres_url(name)
    drop_postgres_database(name)


def test_an_empty_database_upgrades_to_head_and_matches_the_models(empty_database_url: str):
    assert "tracking" in import_every_components_tables()
    engine = get_engine(empty_database_url)  # migrates on first use
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions()
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        assert compare_metadata(context, Base.metadata) == []
    tables = set(inspect(engine).get_table_names())
    assert {"experiments", "runs", "params", "tags", "metrics", "logged_models", "alembic_version"} <= tables
    assert set(Base.metadata.tables) <= tables


def test_upgrading_a_database_at_head_changes_nothing(empty_database_url: str):
    engine = create_engine(empty_database_url)
    migrate.upgrade(engine)
    migrate.upgrade(engine)
    with engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions()
    engine.dispose()


def test_processes_starting_together_on_a_new_database_migrate_it_once(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    code = (
        "import sys; from quayside.tracking.store import TrackingStore; "
        "s = TrackingStore(sys.argv[1], sys.argv[2]); print(s.get_or_create_experiment('together').id)"
    )
    processes = [
        subprocess.Popen(
            [sys.executable, "-c", code, url, str(tmp_path / "artifacts")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    results = [p.communicate(timeout=60) for p in processes]
    assert [p.returncode for p in processes] == [0] * 4, results
    assert {stdout.strip() for stdout, _ in results} == {"1"}


def test_a_database_written_by_a_newer_quayside_is_refused(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    engine = create_engine(url)
    migrate.upgrade(engine)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = '9999_from_the_future'"))
    with pytest.raises(
        InvalidStateError, match="revision 9999_from_the_future, which this Quayside does not know"
    ):
        migrate.upgrade(engine)
    engine.dispose()


def test_a_database_of_the_previous_release_upgrades_and_keeps_its_runs(
    empty_database_url: str, tmp_path: Path
):
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0002_registry")
        connection.commit()
    engine.dispose()
    # A run written at 0002; the store's first use migrates to head and still finds it.
    with create_engine(empty_database_url).begin() as connection:
        connection.execute(
            text("INSERT INTO experiments (name, lifecycle, created_at) VALUES ('old', 'active', 1)")
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, experiment_id, name, status, lifecycle, start_time) "
                "VALUES ('0123456789abcdef0123456789abcdef', 1, 'kept', 'FINISHED', 'active', 1)"
            )
        )
    store = TrackingStore(empty_database_url, tmp_path / "artifacts")
    assert store.get_run("0123456789abcdef0123456789abcdef").name == "kept"
    with store.engine.connect() as connection:
        assert migrate.current_revisions(connection) == migrate.head_revisions() == {"0008_build_records"}
    assert {"mlflow_models", "mlflow_dataset_inputs"} <= set(inspect(store.engine).get_table_names())


def test_a_database_of_the_release_before_identity_upgrades_and_keeps_its_data(
    empty_database_url: str, tmp_path: Path
):
    from quayside.identity.model import Level, Resource, ResourceKind
    from quayside.identity.store import IdentityStore

    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0003_mlflow_compat")
        connection.commit()
    # What a 0003 database holds: an experiment, a run, a registered model with a version.
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO experiments (name, lifecycle, created_at) VALUES ('old', 'active', 1)")
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, experiment_id, name, status, lifecycle, start_time) "
                "VALUES ('0123456789abcdef0123456789abcdef', 1, 'kept', 'FINISHED', 'active', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO registered_models (name, description, allow_multiple_production, "
                "last_version, created_at, updated_at) VALUES ('iris', 'kept', false, 1, 1, 1)"
            )
        )
    engine.dispose()
    store = TrackingStore(empty_database_url, tmp_path / "artifacts")  # first use migrates to head
    assert store.get_run("0123456789abcdef0123456789abcdef").name == "kept"
    with store.engine.connect() as connection:
        assert migrate.current_revisions(connection) == {"0008_build_records"}
        assert connection.execute(text("SELECT description FROM registered_models")).scalar() == "kept"
    assert {"users", "api_tokens", "groups", "group_members", "grants", "auth_events"} <= set(
        inspect(store.engine).get_table_names()
    )
    # The new tables work on the upgraded database.
    identity = IdentityStore(store.sessions)
    assert not identity.has_users()
    identity.create_user("admin", admin=True)
    new = identity.create_token("admin", actor="admin")
    assert identity.authenticate_token(new.token).name == "admin"
    identity.grant("admin", Resource(ResourceKind.EXPERIMENT, "1"), Level.READ, actor="admin")
    assert [grant.principal for grant in identity.list_grants()] == ["admin"]


def test_a_database_with_logged_models_upgrades_to_experiment_tags_and_back(
    empty_database_url: str, tmp_path: Path
):
    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.upgrade(migrate.alembic_config(connection), "0005_promotion_policy")
        connection.commit()
    # A logged model written at 0005, before logged models could be deleted.
    with engine.begin() as connection:
        connection.execute(
            text("INSERT INTO experiments (name, lifecycle, created_at) VALUES ('old', 'active', 1)")
        )
        connection.execute(
            text(
                "INSERT INTO runs (id, experiment_id, name, status, lifecycle, start_time) "
                "VALUES ('0123456789abcdef0123456789abcdef', 1, 'kept', 'FINISHED', 'active', 1)"
            )
        )
        connection.execute(
            text(
                "INSERT INTO mlflow_models (id, run_id, experiment_id, name, artifact_path, model_type, "
                "status, params, tags, metrics, created_at, updated_at) VALUES ('m-old', "
                "'0123456789abcdef0123456789abcdef', 1, 'model', 'model', '', 'LOGGED_MODEL_READY', "
                "'{}', '{}', '{}', 1, 1)"
            )
        )
    engine.dispose()

    from quayside.tracking.mlflow_models import MlflowModelStore

    store = TrackingStore(empty_database_url, tmp_path / "artifacts")  # first use migrates to head
    models = MlflowModelStore(store.sessions)
    assert models.get("m-old").name == "model"  # live after the upgrade
    assert store.set_experiment_tag(1, "team", "ml").tags == {"team": "ml"}
    models.delete("m-old")
    store.engine.dispose()

    engine = create_engine(empty_database_url)
    with engine.connect() as connection:
        command.downgrade(migrate.alembic_config(connection), "0005_promotion_policy")
        connection.commit()
    inspector = inspect(engine)
    assert "experiment_tags" not in inspector.get_table_names()
    assert "lifecycle" not in {column["name"] for column in inspector.get_columns("mlflow_models")}
    with engine.connect() as connection:
        # A deleted model would come back live at 0005: the downgrade drops it.
        assert connection.execute(text("SELECT count(*) FROM mlflow_models")).scalar() == 0
    engine.dispose()
