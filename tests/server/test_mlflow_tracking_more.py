"""The rest of MLflow's tracking API on the wire, in process: the shapes MLflow's client sends and parses,
and the error codes it turns into ``MlflowException``s.

The real client exercises every call once (tests/server/test_mlflow_compat.py); these pin the
messages and the refusals without a venv or a server process.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quayside.config import Settings
from quayside.server.app import create_app

MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def http(tmp_path: Path) -> Iterator[TestClient]:
    with TestClient(create_app(Settings(home=tmp_path)), base_url="http://localhost") as client:
        yield client


def _post(http: TestClient, path: str, **body):
    return http.post(f"{MLFLOW}{path}", json=body)


def _ok(response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()


def _error(response, status: int, code: str) -> str:
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == code, response.text
    return response.json()["message"]


def _experiment(http: TestClient, name: str = "e", tags: list[dict] | None = None) -> str:
    return _ok(_post(http, "/experiments/create", name=name, tags=tags or []))["experiment_id"]


def _run(http: TestClient, experiment_id: str, tags: list[dict] | None = None) -> str:
    return _ok(_post(http, "/runs/create", experiment_id=experiment_id, tags=tags or []))["run"]["info"][
        "run_id"
    ]


def test_experiment_tags_are_created_set_deleted_and_shown_as_mlflows_key_value_list(http: TestClient):
    experiment_id = _experiment(http, tags=[{"key": "team", "value": "growth"}])
    _ok(_post(http, "/experiments/set-experiment-tag", experiment_id=experiment_id, key="a", value="1"))
    shown = _ok(http.get(f"{MLFLOW}/experiments/get", params={"experiment_id": experiment_id}))["experiment"]
    assert shown["tags"] == [{"key": "a", "value": "1"}, {"key": "team", "value": "growth"}]
    _ok(_post(http, "/experiments/delete-experiment-tag", experiment_id=experiment_id, key="team"))
    searched = _ok(_post(http, "/experiments/search", filter="name = 'e'"))["experiments"]
    assert [e["tags"] for e in searched] == [[{"key": "a", "value": "1"}]]

    missing = _post(http, "/experiments/delete-experiment-tag", experiment_id=experiment_id, key="team")
    assert _error(missing, 404, "RESOURCE_DOES_NOT_EXIST") == "experiment 'e' has no tag 'team'"
    unknown = _post(http, "/experiments/set-experiment-tag", experiment_id="12345", key="a", value="1")
    _error(unknown, 404, "RESOURCE_DOES_NOT_EXIST")
    _error(
        _post(http, "/experiments/set-experiment-tag", experiment_id=experiment_id),
        400,
        "INVALID_PARAMETER_VALUE",
    )


def test_runs_and_experiments_are_deleted_searched_as_deleted_and_restored(http: TestClient):
    experiment_id = _experiment(http)
    live, gone = _run(http, experiment_id), _run(http, experiment_id)
    _ok(_post(http, "/runs/delete", run_id=gone))

    def found(view: str) -> set[str]:
        page = _ok(_post(http, "/runs/search", experiment_ids=[experiment_id], run_view_type=view))
        return {r["info"]["run_id"] for r in page.get("runs", [])}

    assert (found("ACTIVE_ONLY"), found("DELETED_ONLY"), found("ALL")) == ({live}, {gone}, {live, gone})
    bogus = _post(http, "/runs/search", experiment_ids=[experiment_id], run_view_type="SOME")
    assert "must be ACTIVE_ONLY, DELETED_ONLY or ALL" in _error(bogus, 400, "INVALID_PARAMETER_VALUE")

    assert "is not deleted" in _error(
        _post(http, "/runs/restore", run_id=live), 400, "INVALID_PARAMETER_VALUE"
    )
    _ok(_post(http, "/runs/restore", run_id=gone))
    assert found("ACTIVE_ONLY") == {live, gone}
    _error(_post(http, "/runs/restore", run_id="0" * 32), 404, "RESOURCE_DOES_NOT_EXIST")

    _ok(_post(http, "/experiments/delete", experiment_id=experiment_id))
    deleted = _ok(_post(http, "/experiments/search", view_type="DELETED_ONLY"))["experiments"]
    assert [e["experiment_id"] for e in deleted] == [experiment_id]
    tagging = _post(http, "/experiments/set-experiment-tag", experiment_id=experiment_id, key="a", value="1")
    assert "restore it first" in _error(tagging, 400, "INVALID_PARAMETER_VALUE")
    _ok(_post(http, "/experiments/restore", experiment_id=experiment_id))
    assert found("ACTIVE_ONLY") == {live, gone}
    _error(_post(http, "/experiments/restore", experiment_id=experiment_id), 400, "INVALID_PARAMETER_VALUE")


def test_a_runs_tag_is_deleted_but_its_name_and_parent_are_not_tags_to_delete(http: TestClient):
    run_id = _run(http, _experiment(http), tags=[{"key": "a", "value": "1"}])
    _ok(_post(http, "/runs/delete-tag", run_id=run_id, key="a"))
    tags = _ok(http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}))["run"]["data"]["tags"]
    assert "a" not in {t["key"] for t in tags}
    again = _post(http, "/runs/delete-tag", run_id=run_id, key="a")
    assert _error(again, 404, "RESOURCE_DOES_NOT_EXIST") == f"run '{run_id}' has no tag 'a'"
    name = _post(http, "/runs/delete-tag", run_id=run_id, key="mlflow.runName")
    assert "rename the run instead" in _error(name, 400, "INVALID_PARAMETER_VALUE")


def test_logged_models_are_searched_with_mlflows_filter_and_order_and_deleted(http: TestClient):
    experiment_id = _experiment(http)
    run_id = _run(http, experiment_id)
    ids = {}
    for name, accuracy in (("a", 0.7), ("b", 0.9)):
        created = _post(http, "/logged-models", experiment_id=experiment_id, source_run_id=run_id, name=name)
        ids[name] = _ok(created)["model"]["info"]["model_id"]
        point = {"key": "accuracy", "value": accuracy, "timestamp": 1, "step": 0, "model_id": ids[name]}
        _ok(_post(http, "/runs/log-batch", run_id=run_id, metrics=[point]))

    def searching(**body):
        return _post(http, "/logged-models/search", experiment_ids=[experiment_id], **body)

    def search(**body) -> list[str]:
        return [m["info"]["name"] for m in _ok(searching(**body)).get("models", [])]

    accuracy = "metrics.accuracy"
    assert search(filter=f"{accuracy} > 0.8") == ["b"]
    assert search(order_by=[{"field_name": accuracy, "ascending": True}]) == ["a", "b"]
    assert search(order_by=[{"field_name": accuracy, "ascending": False}], max_results=1) == ["b"]
    by_dataset = searching(order_by=[{"field_name": accuracy, "dataset_name": "d"}])
    assert "per dataset" in _error(by_dataset, 400, "INVALID_PARAMETER_VALUE")
    _error(searching(datasets=[{"dataset_name": "d"}]), 400, "INVALID_PARAMETER_VALUE")

    assert _ok(http.delete(f"{MLFLOW}/logged-models/{ids['a']}")) == {}
    _error(http.get(f"{MLFLOW}/logged-models/{ids['a']}"), 404, "RESOURCE_DOES_NOT_EXIST")
    _error(http.delete(f"{MLFLOW}/logged-models/{ids['a']}"), 404, "RESOURCE_DOES_NOT_EXIST")
    assert search() == ["b"]
    outputs = _ok(http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}))["run"]["outputs"][
        "model_outputs"
    ]
    assert [o["model_id"] for o in outputs] == [ids["b"]]


def test_an_endpoint_still_not_answered_says_what_is(http: TestClient):
    message = _error(_post(http, "/runs/no-such-call"), 404, "ENDPOINT_NOT_FOUND")
    assert (
        "experiments and their tags" in message and "deleting and restoring runs and experiments" in message
    )
