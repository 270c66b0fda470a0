"""MLflow's logged models in the tracking store: search with MLflow's filter and order, delete, and
``models:/m-<id>``.

A filter is the run filter language with a logged model's attributes, read in Python in SQL's
three-valued logic (a model without the metric matches neither ``>`` nor its negation).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.errors import FilterError, NotFoundError
from quayside.tracking.entities import Metric
from quayside.tracking.mlflow_models import READY, MlflowLoggedModel, MlflowModelStore, logged_model_id
from quayside.tracking.model_search import ModelOrder, model_filter, sort_models
from quayside.tracking.store import TrackingStore


@pytest.fixture
def store(tmp_path: Path) -> TrackingStore:
    return TrackingStore.from_settings(Settings(home=tmp_path))


@pytest.fixture
def models(store: TrackingStore) -> MlflowModelStore:
    return MlflowModelStore(store.sessions)


def _model(store: TrackingStore, models: MlflowModelStore, name: str, accuracy: float | None, **params: str):
    experiment = store.get_or_create_experiment("e")
    run = store.create_run(experiment.id, f"run-{name}")
    model = models.create(run.id, experiment.id, name, name, model_type="sk", params=params, tags={"n": name})
    if accuracy is not None:
        models.log_metrics(model.id, [Metric("accuracy", accuracy, 0, 1)])
    return models.get(model.id)


@pytest.fixture
def three(store, models) -> list[MlflowLoggedModel]:
    return [
        _model(store, models, "low", 0.5, C="1"),
        _model(store, models, "high", 0.95, C="0.5"),
        _model(store, models, "unscored", None, C="1"),
    ]


def _search(models: MlflowModelStore, experiment_id: int, filter_string: str = "", order=()) -> list[str]:
    found, total = models.search([experiment_id], 100, filter_string=filter_string, order_by=order)
    assert total == len(found)
    return [m.name for m in found]


def test_a_filter_reads_metrics_params_tags_and_attributes(models, three):
    experiment = three[0].experiment_id
    assert _search(models, experiment, "metrics.accuracy > 0.9") == ["high"]
    assert set(_search(models, experiment, "params.C = '1'")) == {"low", "unscored"}
    assert _search(models, experiment, "tags.n = 'low' and name = 'low'") == ["low"]
    assert set(_search(models, experiment, "name like '%o%'")) == {"low", "unscored"}
    assert _search(models, experiment, "name ILIKE 'HI%'") == ["high"]
    assert _search(models, experiment, f"model_id = '{three[1].id}'") == ["high"]
    assert _search(models, experiment, f"source_run_id = '{three[2].run_id}'") == ["unscored"]
    assert len(_search(models, experiment, "status = 'PENDING' and model_type = 'sk'")) == 3
    assert _search(models, experiment, "status = 'LOGGED_MODEL_READY'") == []
    assert len(_search(models, experiment, f"creation_timestamp >= {three[0].created_at}")) == 3
    assert set(_search(models, experiment, "params.C in ('0.5', '2') or metrics.accuracy < 0.6")) == {
        "low",
        "high",
    }


def test_a_model_without_the_metric_matches_neither_a_comparison_nor_its_negation(models, three):
    experiment = three[0].experiment_id
    assert _search(models, experiment, "not metrics.accuracy > 0.9") == ["low"]
    assert _search(models, experiment, "metrics.accuracy is null") == ["unscored"]
    assert _search(models, experiment, "metrics.accuracy not in (0.5)") == ["high"]


def test_order_by_sorts_by_each_key_missing_values_last_then_newest_first(models, three):
    experiment = three[0].experiment_id
    assert _search(models, experiment, order=[ModelOrder("metrics.accuracy", ascending=False)]) == [
        "high",
        "low",
        "unscored",
    ]
    assert _search(models, experiment, order=[ModelOrder("metrics.accuracy")]) == ["low", "high", "unscored"]
    assert _search(models, experiment, order=[ModelOrder("name")]) == ["high", "low", "unscored"]
    by_c = [ModelOrder("params.C"), ModelOrder("metrics.accuracy", ascending=False)]
    assert _search(models, experiment, "", by_c) == ["high", "low", "unscored"]
    # Without an order: newest first, by id on ties (as MLflow's store orders).
    assert _search(models, experiment) == [m.name for m in sort_models(three, [])]


def test_a_page_of_a_filtered_search_counts_every_match(models, three):
    page, total = models.search(
        [three[0].experiment_id], 1, 1, filter_string="params.C = '1'", order_by=[ModelOrder("name")]
    )
    assert [m.name for m in page] == ["unscored"] and total == 2


def test_bad_filters_and_orders_are_refused_naming_the_column(models, three):
    with pytest.raises(FilterError, match="unknown logged model attribute 'colour'"):
        model_filter("colour = 'red'")
    with pytest.raises(FilterError, match=r"params\.C holds strings"):
        model_filter("params.C > 1")
    with pytest.raises(FilterError, match="at column 19"):
        model_filter("metrics.accuracy >")
    with pytest.raises(FilterError, match="name one column"):
        models.search([three[0].experiment_id], 10, order_by=[ModelOrder("name desc")])


def test_a_deleted_model_is_found_by_nothing_and_its_files_stay_with_the_run(store, models, three):
    low = three[0]
    assert store.logged_model_files(low.id) == (low.run_id, "low")
    models.delete(low.id)
    for lookup in (models.get, models.delete, store.logged_model_files):
        with pytest.raises(NotFoundError, match=f"no logged model with id '{low.id}'"):
            lookup(low.id)
    with pytest.raises(NotFoundError):
        models.set_tags(low.id, {"k": "v"})
    assert "low" not in _search(models, low.experiment_id)
    assert "low" not in _search(models, low.experiment_id, "params.C = '1'")
    assert models.for_run(low.run_id) == []
    assert models.finalize(three[1].id, READY).status == READY  # the others are untouched


def test_only_mlflows_logged_model_uri_names_a_logged_model():
    model_id = "m-" + "0123456789abcdef" * 2
    assert logged_model_id(f"models:/{model_id}") == model_id
    assert logged_model_id(f"models:/{model_id}/") == model_id
    for registered in (f"models:/{model_id}/1", "models:/churn/1", "models:/churn@champion", "models:/m-12"):
        assert logged_model_id(registered) is None
