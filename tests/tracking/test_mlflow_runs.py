"""MLflow's rules for runs, kept by the tracking store: system tags, and metric points logged models keep.

The MLflow adapter's log calls are one store call each (:meth:`TrackingStore.log_mlflow_batch`),
so a batch lands whole or not at all, logged models' share included.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.errors import AlreadyExistsError, InvalidStateError, NotFoundError
from quayside.tracking.entities import Metric
from quayside.tracking.mlflow_models import MlflowModelStore, free_artifact_path
from quayside.tracking.mlflow_runs import (
    NAME_TAG,
    PARENT_TAG,
    USER_TAG,
    MlflowPoint,
    point_identity,
    run_points,
    run_start,
    run_tags,
    split_name_tag,
)
from quayside.tracking.store import TrackingStore


@pytest.fixture
def store(tmp_path: Path) -> TrackingStore:
    return TrackingStore.from_settings(Settings(home=tmp_path))


@pytest.fixture
def models(store: TrackingStore) -> MlflowModelStore:
    return MlflowModelStore(store.sessions)


def test_a_create_run_takes_its_name_parent_and_user_from_mlflows_system_tags():
    start = run_start({NAME_TAG: "from-tag", PARENT_TAG: "p" * 32, "k": "v"}, user_id="ada")
    assert (start.name, start.parent_run_id) == ("from-tag", "p" * 32)
    assert start.tags == {"k": "v", USER_TAG: "ada"}
    # run_name wins over the tag, and the tag is never stored beside the name.
    named = run_start({NAME_TAG: "from-tag", USER_TAG: "grace"}, user_id="ada", run_name="given")
    assert (named.name, named.tags) == ("given", {USER_TAG: "grace"})
    assert run_start({NAME_TAG: ""}).name is None


def test_a_batchs_run_name_tag_is_a_rename_and_the_run_shows_its_name_and_parent_as_tags(store):
    assert split_name_tag({NAME_TAG: "new", "k": "v"}) == ("new", {"k": "v"})
    assert split_name_tag({NAME_TAG: ""}) == (None, {})
    parent = store.create_run(store.create_experiment("e").id, "parent")
    child = store.create_run(parent.experiment_id, "child", {"k": "v"}, parent.id)
    assert run_tags(child) == {"k": "v", NAME_TAG: "child", PARENT_TAG: parent.id}


def test_a_models_point_the_run_already_has_is_kept_by_the_model_only():
    copied, fresh, plain = Metric("acc", 0.9, 1, 10), Metric("acc", 0.95, 2, 20), Metric("loss", 0.1, 1, 10)
    points = [MlflowPoint(plain), MlflowPoint(copied, "m-1"), MlflowPoint(fresh, "m-1")]
    for_run, by_model = run_points(points, {point_identity(copied)})
    assert for_run == [plain, fresh]
    assert by_model == {"m-1": [copied, fresh]}


def test_an_mlflow_batch_logs_to_the_run_and_its_logged_model_in_one_call(store, models):
    run = store.create_run(store.create_experiment("e").id, "r")
    model = models.create(
        run.id, run.experiment_id, "model", free_artifact_path(store.artifacts, run.id, "model")
    )
    store.log_mlflow_batch(run.id, [MlflowPoint(Metric("acc", 0.9, 1, 10))])
    # log_model copies the run's point onto the model: the run keeps one row of it.
    store.log_mlflow_batch(
        run.id,
        [MlflowPoint(Metric("acc", 0.9, 1, 10), model.id)],
        {"lr": "0.1"},
        {NAME_TAG: "renamed", "t": "x"},
    )
    assert store.get_metric_history(run.id, "acc") == [Metric("acc", 0.9, 1, 10)]
    assert models.get(model.id).metrics["acc"] == Metric("acc", 0.9, 1, 10)
    logged = store.get_run(run.id)
    assert (logged.name, logged.params, logged.tags) == ("renamed", {"lr": "0.1"}, {"t": "x"})


def test_an_mlflow_batch_whose_logged_model_is_missing_writes_nothing_to_the_run(store, models):
    run = store.create_run(store.create_experiment("e").id, "r")
    model = models.create(run.id, run.experiment_id, "model", "model")
    batch = [MlflowPoint(Metric("loss", 0.5, 0, 10)), MlflowPoint(Metric("acc", 0.9, 0, 10), model.id)]
    with pytest.raises(NotFoundError, match="no logged model with id 'm-missing'"):
        store.log_mlflow_batch(
            run.id,
            [*batch, MlflowPoint(Metric("acc", 0.8, 1, 20), "m-missing")],
            {"lr": "0.1"},
            {NAME_TAG: "renamed", "t": "x"},
        )
    unchanged = store.get_run(run.id)
    assert (unchanged.name, unchanged.metrics, unchanged.params, unchanged.tags) == ("r", {}, {}, {})
    assert store.get_metric_history(run.id, "loss") == store.get_metric_history(run.id, "acc") == []
    assert models.get(model.id).metrics == {}


def test_an_mlflow_batch_that_changes_a_param_or_logs_to_a_deleted_run_writes_nothing(store, models):
    run = store.create_run(store.create_experiment("e").id, "r")
    model = models.create(run.id, run.experiment_id, "model", "model")
    store.log_mlflow_batch(run.id, params={"lr": "0.1"})
    with pytest.raises(AlreadyExistsError, match="param 'lr'"):
        store.log_mlflow_batch(run.id, [MlflowPoint(Metric("acc", 0.9, 0, 10), model.id)], {"lr": "0.2"})
    assert models.get(model.id).metrics == {}
    assert store.get_metric_history(run.id, "acc") == []
    store.delete_run(run.id)
    with pytest.raises(InvalidStateError, match="is deleted"):
        store.log_mlflow_batch(run.id, [MlflowPoint(Metric("acc", 0.9, 0, 10), model.id)])
    assert models.get(model.id).metrics == {}
