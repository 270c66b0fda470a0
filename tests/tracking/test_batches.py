"""A log batch larger than one request: cut to the server's limits, read back whole, stopped by a changed param."""

from __future__ import annotations

import json
import uuid

import pytest

from quayside.errors import AlreadyExistsError, UsageError
from quayside.tracking.batches import (
    BATCH_REQUEST_BYTES,
    MAX_BATCH_PARAMS,
    MAX_BATCH_POINTS,
    MAX_BATCH_TAGS,
    batch_bodies,
)
from quayside.tracking.client import Client
from quayside.tracking.entities import Metric

POINTS = 25_000
PARAMS = 1_500


def unique(prefix: str = "batch") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def big_batch() -> tuple[list[Metric], dict[str, str]]:
    metrics = [
        Metric("loss" if step % 2 else "gain", step / 7, step, 1_700_000_000_000 + step)
        for step in range(POINTS)
    ]
    params = {f"param.{i:04d}": f"value {i} " + "x" * (i % 50) for i in range(PARAMS)}
    return metrics, params


# --- the cut (pure) ---------------------------------------------------------------------------


def test_a_big_batch_is_cut_within_every_limit_with_params_and_tags_first_and_points_in_order():
    metrics, params = big_batch()
    tags = {f"tag.{i}": "t" * 8000 for i in range(1_200)}
    bodies = [json.loads(body) for body in batch_bodies(metrics, params, tags)]
    encoded = batch_bodies(metrics, params, tags)

    assert all(len(body) <= BATCH_REQUEST_BYTES for body in encoded)
    assert all(len(b["metrics"]) <= MAX_BATCH_POINTS for b in bodies)
    assert all(len(b["params"]) <= MAX_BATCH_PARAMS and len(b["tags"]) <= MAX_BATCH_TAGS for b in bodies)
    assert [m for b in bodies for m in b["metrics"]] == [m.to_dict() for m in metrics]
    assert {k: v for b in bodies for k, v in b["params"].items()} == params
    assert {k: v for b in bodies for k, v in b["tags"].items()} == tags
    first_metric = next(i for i, b in enumerate(bodies) if b["metrics"])
    assert not any(b["params"] or b["tags"] for b in bodies[first_metric + 1 :])
    last_param = max(i for i, b in enumerate(bodies) if b["params"])
    assert not any(b["tags"] for b in bodies[:last_param])


def test_a_batch_that_fits_one_request_stays_one_request():
    metrics = [Metric("loss", float("nan"), 1), Metric("loss", float("inf"), 2)]
    assert [json.loads(b) for b in batch_bodies(metrics, {"lr": "0.1"}, {"team": "churn"})] == [
        {
            "metrics": [m.to_dict() for m in metrics],
            "params": {"lr": "0.1"},
            "tags": {"team": "churn"},
        }
    ]
    assert batch_bodies([], {}, {}) == [b'{"metrics":[],"params":{},"tags":{}}']


# --- through a real server (and the local store, which must agree) --------------------------


def test_a_batch_of_25000_points_and_1500_params_reads_back_exactly(client: Client):
    metrics, params = big_batch()
    run = client.create_run(unique())
    client.log_batch(run.id, metrics=metrics, params=params, tags={"team": "churn"})

    after = client.get_run(run.id)
    assert after.params == params and after.tags == {"team": "churn"}
    for key in ("loss", "gain"):
        history = client.get_metric_history(run.id, key)
        expected = [m for m in metrics if m.key == key]
        assert len(history) == len(expected) == POINTS // 2
        assert [(p.step, p.value, p.timestamp) for p in history] == [
            (m.step, m.value, m.timestamp) for m in expected
        ]


def test_a_changed_param_in_a_big_batch_is_a_409_and_none_of_its_points_land(client: Client):
    metrics, params = big_batch()
    run = client.create_run(unique())
    client.log_param(run.id, "lr", "0.1")
    changed = params | {"lr": "0.2"}  # last, so on a server it travels in the second request of params

    with pytest.raises(
        AlreadyExistsError, match=r"param 'lr' of run .* is already '0\.1'; params are written once"
    ):
        client.log_batch(run.id, metrics=metrics, params=changed, tags={"team": "churn"})

    after = client.get_run(run.id)
    assert after.params["lr"] == "0.1"
    assert after.metrics == {} and after.tags == {}
    assert client.get_metric_history(run.id, "loss") == client.get_metric_history(run.id, "gain") == []


def test_a_bad_entry_late_in_a_big_batch_is_refused_before_anything_is_sent(client: Client):
    metrics, params = big_batch()
    run = client.create_run(unique())
    with pytest.raises(UsageError, match="metric key 'a;b' is invalid"):
        client.log_batch(run.id, metrics=[*metrics, Metric("a;b", 1.0)], params=params)
    after = client.get_run(run.id)
    assert after.params == {} and after.metrics == {}
