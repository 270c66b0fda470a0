"""Pages of a search (offset + count), sorting by a metric in SQL, and what an experiment's runs hold."""

from __future__ import annotations

import uuid

import pytest

from quayside import Metric
from quayside.errors import FilterError, UsageError
from quayside.tracking.client import Client
from quayside.tracking.store import TrackingStore


def _experiment_with_runs(client: Client, count: int) -> str:
    experiment = f"pages-{uuid.uuid4().hex[:8]}"
    for number in range(count):
        run = client.create_run(experiment, run_name=f"r{number:02d}")
        # accuracy rises with the number, but the first 3 runs log none (they sort last either way)
        metrics = [Metric("accuracy", number / 100, 0)] if number >= 3 else []
        client.log_batch(run.id, metrics, {"model": "rf" if number % 2 else "gbm"})
    return experiment


def test_pages_of_a_search_cover_the_ordered_result_once(client: Client):
    experiment = _experiment_with_runs(client, 12)
    pages = [
        client.search_runs(experiment, order_by="metrics.accuracy desc", max_results=5, offset=offset)
        for offset in (0, 5, 10)
    ]
    names = [run.name for page in pages for run in page]
    assert [len(page) for page in pages] == [5, 5, 2]
    assert names[:9] == [f"r{n:02d}" for n in range(11, 2, -1)]
    assert sorted(names[9:]) == ["r00", "r01", "r02"]  # no accuracy: last
    assert client.search_runs(experiment, max_results=5, offset=12) == []


def test_a_negative_offset_is_refused(client: Client):
    with pytest.raises(UsageError, match="offset"):
        client.search_runs(None, offset=-1)


@pytest.mark.parametrize("local", ["local_sqlite", "local_postgresql"])
def test_count_activity_and_keys_describe_an_experiments_runs(local: str, request: pytest.FixtureRequest):
    store = TrackingStore.from_settings(request.getfixturevalue(local).settings)
    experiment = store.create_experiment(f"keys-{uuid.uuid4().hex[:8]}")
    runs = [store.create_run(experiment.id, f"r{n}", start_time=1_000 + n) for n in range(4)]
    for number, run in enumerate(runs):
        store.log_batch(run.id, [Metric("loss", 1.0, 0), Metric("val loss", 2.0, 0)], {"lr": str(number)})
    store.log_batch(runs[0].id, [], {"batch size": "32"})
    store.update_run(runs[1].id, status="FINISHED", end_time=9_000)
    store.delete_run(runs[3].id)

    assert store.count_runs([experiment.id]) == 3
    assert store.count_runs([experiment.id], "params.lr in ('0', '1')") == 2
    with pytest.raises(FilterError, match="column"):
        store.count_runs([experiment.id], "params.lr =")
    activity = store.experiment_activity()[experiment.id]
    assert (activity.runs, activity.last_activity) == (3, 9_000)
    keys = store.run_keys(experiment.id)
    assert keys.params == ("batch size", "lr")
    assert keys.metrics == ("loss", "val loss")
