"""The rest of MLflow's tracking API, as the tracking store keeps it: experiment tags, deleting run
tags, restoring deleted runs and experiments, and searching deleted runs.

Each is one store call in one transaction; the MLflow adapter only parses and renders. Runs on
SQLite and PostgreSQL (the tag upsert is each dialect's ``ON CONFLICT``).
"""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest

from quayside.db.sql import Lifecycle
from quayside.errors import InvalidStateError, NotFoundError, UsageError
from quayside.tracking.mlflow_runs import NAME_TAG, PARENT_TAG, check_deletable_tag
from quayside.tracking.store import TrackingStore


@pytest.fixture
def store(database_url: str, tmp_path: Path) -> TrackingStore:
    return TrackingStore(database_url, tmp_path / "artifacts")


def _name(prefix: str = "e") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_an_experiment_is_created_with_tags_and_they_are_set_overwritten_and_deleted(store: TrackingStore):
    experiment = store.create_experiment(_name(), {"team": "growth", "mlflow.note.content": "hi"})
    assert experiment.tags == {"mlflow.note.content": "hi", "team": "growth"}
    assert store.get_experiment(experiment.id).tags == experiment.tags

    assert store.set_experiment_tag(experiment.id, "team", "search").tags["team"] == "search"
    store.set_experiment_tag(experiment.id, "stage", "dev")
    assert store.get_experiment_by_name(experiment.name).tags == {
        "mlflow.note.content": "hi",
        "stage": "dev",
        "team": "search",
    }
    assert "team" not in store.delete_experiment_tag(experiment.id, "team").tags
    listed = {e.id: e for e in store.list_experiments()}
    assert listed[experiment.id].tags == {"mlflow.note.content": "hi", "stage": "dev"}
    assert experiment.to_dict()["tags"] == experiment.tags


def test_experiment_tag_errors_name_what_is_missing_or_wrong(store: TrackingStore):
    experiment = store.create_experiment(_name())
    with pytest.raises(NotFoundError, match=f"experiment '{experiment.name}' has no tag 'nope'"):
        store.delete_experiment_tag(experiment.id, "nope")
    with pytest.raises(NotFoundError, match="no experiment with id 999999"):
        store.set_experiment_tag(999999, "k", "v")
    with pytest.raises(UsageError, match="tag key"):
        store.set_experiment_tag(experiment.id, "bad\nkey", "v")
    with pytest.raises(UsageError, match="tag key"):
        store.create_experiment(_name(), {"bad\nkey": "v"})
    store.delete_experiment(experiment.id)
    with pytest.raises(InvalidStateError, match="is deleted and cannot be tagged; restore it first"):
        store.set_experiment_tag(experiment.id, "k", "v")
    with pytest.raises(InvalidStateError, match="cannot be untagged"):
        store.delete_experiment_tag(experiment.id, "k")


def test_a_deleted_experiment_is_restored_with_its_runs(store: TrackingStore):
    experiment = store.create_experiment(_name())
    runs = [store.create_run(experiment.id, f"r{i}") for i in range(2)]
    store.delete_experiment(experiment.id)
    assert {store.get_run(r.id).lifecycle for r in runs} == {Lifecycle.DELETED}

    restored = store.restore_experiment(experiment.id)
    assert restored.lifecycle == Lifecycle.ACTIVE
    assert {store.get_run(r.id).lifecycle for r in runs} == {Lifecycle.ACTIVE}
    assert {r.id for r in store.search_runs([experiment.id])} == {r.id for r in runs}

    with pytest.raises(InvalidStateError, match="is not deleted; there is nothing to restore"):
        store.restore_experiment(experiment.id)
    with pytest.raises(NotFoundError, match="no experiment with id 999999"):
        store.restore_experiment(999999)


def test_a_deleted_run_is_restored_unless_its_experiment_is_deleted(store: TrackingStore):
    experiment = store.create_experiment(_name())
    run = store.create_run(experiment.id, "r")
    with pytest.raises(InvalidStateError, match=f"run '{run.id}' is not deleted"):
        store.restore_run(run.id)
    store.delete_run(run.id)
    assert store.restore_run(run.id).lifecycle == Lifecycle.ACTIVE
    store.log_batch(run.id, params={"p": "1"})  # live again: it takes writes

    store.delete_experiment(experiment.id)
    with pytest.raises(InvalidStateError, match="which is deleted; restore the experiment"):
        store.restore_run(run.id)
    with pytest.raises(NotFoundError, match="no run with id 'missing'"):
        store.restore_run("missing")


def test_deleting_a_run_tag_removes_it_and_a_missing_or_deleted_one_is_refused(store: TrackingStore):
    run = store.create_run(store.create_experiment(_name()).id, "r", {"a": "1", "b": "2"})
    assert store.delete_run_tag(run.id, "a").tags == {"b": "2"}
    with pytest.raises(NotFoundError, match=f"run '{run.id}' has no tag 'a'"):
        store.delete_run_tag(run.id, "a")
    store.delete_run(run.id)
    with pytest.raises(InvalidStateError, match="is deleted"):
        store.delete_run_tag(run.id, "b")


def test_the_run_name_and_parent_are_not_tags_to_delete():
    assert check_deletable_tag("team") == "team"
    with pytest.raises(UsageError, match="rename the run instead"):
        check_deletable_tag(NAME_TAG)
    with pytest.raises(UsageError, match="the run's parent"):
        check_deletable_tag(PARENT_TAG)


def test_run_search_keeps_active_runs_unless_asked_for_deleted_ones(store: TrackingStore):
    experiment = store.create_experiment(_name())
    live, gone = store.create_run(experiment.id, "live"), store.create_run(experiment.id, "gone")
    store.delete_run(gone.id)

    def found(*lifecycles: str) -> set[str]:
        return {r.name for r in store.search_runs([experiment.id], lifecycles=lifecycles)}

    assert {r.name for r in store.search_runs([experiment.id])} == {"live"}  # active runs by default
    assert found(Lifecycle.DELETED) == {"gone"}
    assert found(Lifecycle.ACTIVE, Lifecycle.DELETED) == {"live", "gone"}
    assert store.count_runs([experiment.id], lifecycles=(Lifecycle.DELETED,)) == 1
    deleted_named = store.search_runs([experiment.id], "name = 'gone'", lifecycles=(Lifecycle.DELETED,))
    assert [r.id for r in deleted_named] == [gone.id] and live.id not in {r.id for r in deleted_named}
