"""The tracking REST API as a client on the wire sees it: JSON errors with codes, 4xx for bad input, durability."""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from quayside.config import Settings
from quayside.tracking.client import Client
from quayside.tracking.entities import Metric

API = "/api/tracking"


@pytest.fixture
def http(sqlite_server) -> httpx.Client:
    with httpx.Client(base_url=sqlite_server.url + API, timeout=30) as client:
        yield client


@pytest.fixture
def run_id(sqlite_server, tmp_path: Path) -> str:
    client = Client(settings=Settings(home=tmp_path, tracking_uri=sqlite_server.url))
    return client.create_run(f"api-{uuid.uuid4().hex[:8]}").id


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file() and not p.name.startswith("quayside.db")}


def test_a_missing_run_is_a_404_with_a_json_error_body(http: httpx.Client):
    response = http.get("/runs/0123456789abcdef0123456789abcdef")
    assert response.status_code == 404
    assert response.json() == {
        "error": {"code": "not_found", "message": "no run with id '0123456789abcdef0123456789abcdef'"}
    }


def test_an_unknown_endpoint_is_a_json_404(http: httpx.Client):
    response = http.get("/nothing-here")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_a_malformed_body_is_a_400_that_names_the_field(http: httpx.Client):
    response = http.post("/runs", json={"experiment_id": "seven"})
    assert response.status_code == 400
    error = response.json()["error"]
    assert error["code"] == "invalid_request"
    assert error["message"].startswith(
        "invalid request: body 'experiment_id': Input should be a valid integer"
    )

    broken = http.post("/runs", content=b"{not json", headers={"content-type": "application/json"})
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_request"


def test_a_metric_that_is_not_a_number_is_a_400(http: httpx.Client, run_id: str):
    response = http.post(f"/runs/{run_id}/batch", json={"metrics": [{"key": "m", "value": "high"}]})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "bad_request",
        "message": "metric value must be a number, not 'high'",
    }


def test_non_finite_metric_values_travel_as_strings(http: httpx.Client, run_id: str):
    body = {"metrics": [{"key": "loss", "value": "NaN", "step": 1}, {"key": "gain", "value": "-Infinity"}]}
    assert http.post(f"/runs/{run_id}/batch", json=body).status_code == 200
    metrics = {m["key"]: m["value"] for m in http.get(f"/runs/{run_id}").json()["metrics"]}
    assert metrics == {"gain": "-Infinity", "loss": "NaN"}


def test_a_bad_filter_is_a_400_naming_the_column(http: httpx.Client):
    response = http.post("/runs/search", json={"filter": "metrics.a >> 1"})
    assert response.status_code == 400
    assert response.json()["error"] == {
        "code": "invalid_filter",
        "message": "invalid filter at column 12: expected a quoted string or a number, got '>'",
    }


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b"])
def test_artifact_paths_that_escape_are_a_400_and_nothing_is_written(
    http, sqlite_server, run_id: str, path: str
):
    before = files_under(sqlite_server.home)
    response = http.put(f"/runs/{run_id}/artifacts/file", params={"path": path}, content=b"escaped")
    assert response.status_code == 400
    assert "artifact path" in response.json()["error"]["message"]
    assert files_under(sqlite_server.home) == before
    assert http.get(f"/runs/{run_id}/artifacts/file", params={"path": path}).status_code == 400


def test_an_artifact_over_the_size_limit_is_a_413_and_leaves_no_file(http, sqlite_server, run_id: str):
    too_big = b"x" * 1_000_001  # the test server's QUAYSIDE_MAX_ARTIFACT_BYTES is 1,000,000
    declared = http.put(f"/runs/{run_id}/artifacts/file", params={"path": "big.bin"}, content=too_big)
    assert declared.status_code == 413
    assert declared.json()["error"]["code"] == "payload_too_large"

    def chunks():  # no Content-Length: the server must count while streaming
        for start in range(0, len(too_big), 65536):
            yield too_big[start : start + 65536]

    streamed = http.put(f"/runs/{run_id}/artifacts/file", params={"path": "big.bin"}, content=chunks())
    assert streamed.status_code == 413
    assert http.get(f"/runs/{run_id}/artifacts").json() == {"artifacts": []}
    assert not (sqlite_server.home / "artifacts" / "runs" / run_id).exists() or not any(
        (sqlite_server.home / "artifacts" / "runs" / run_id).rglob("*")
    )


def test_an_artifact_streams_in_and_out_unchanged(http, run_id: str):
    payload = bytes(range(256)) * 3000
    uploaded = http.put(f"/runs/{run_id}/artifacts/file", params={"path": "data/blob.bin"}, content=payload)
    assert uploaded.status_code == 201
    assert uploaded.json() == {"path": "data/blob.bin", "is_dir": False, "size": len(payload)}
    assert http.get(f"/runs/{run_id}/artifacts/file", params={"path": "data/blob.bin"}).content == payload


def test_a_server_killed_after_acknowledging_writes_loses_none_of_them(own_server, tmp_path: Path):
    own_server.start()
    client = Client(settings=Settings(home=tmp_path / "client", tracking_uri=own_server.url))
    run = client.create_run("durability", tags={"kept": "yes"})
    for step in range(100):
        client.log_metric(run.id, "loss", 1 / (step + 1), step=step)
    client.log_batch(
        run.id, metrics=[Metric("acc", step / 1000, step) for step in range(1000)], params={"p": 1}
    )
    (tmp_path / "model.txt").write_text("weights")
    client.log_artifact(run.id, tmp_path / "model.txt")
    client.set_terminated(run.id, "FINISHED")

    own_server.kill()  # SIGKILL: no shutdown hooks, no flushing
    own_server.start()

    after = client.get_run(run.id)
    assert after.status.value == "FINISHED" and after.params == {"p": "1"} and after.tags == {"kept": "yes"}
    assert len(client.get_metric_history(run.id, "loss")) == 100
    assert len(client.get_metric_history(run.id, "acc")) == 1000
    assert client.download_artifacts(run.id, "model.txt", tmp_path / "back").read_text() == "weights"


def test_the_health_endpoint_answers(sqlite_server):
    assert httpx.get(sqlite_server.url + "/health").json()["status"] == "ok"


@pytest.mark.parametrize("server_name", ["sqlite_server", "postgresql_server"])
def test_out_of_range_numbers_are_a_400_not_a_500(request: pytest.FixtureRequest, server_name: str):
    server = request.getfixturevalue(server_name)
    with httpx.Client(base_url=server.url + API, timeout=30) as http:
        huge = 2**70
        responses = [
            http.get(f"/experiments/{2**40}"),
            http.post("/runs", json={"experiment_id": 2**40}),
            http.post("/runs/search", json={"experiment_ids": [2**40], "max_results": huge}),
        ]
        experiment = http.post("/experiments", json={"name": f"range-{uuid.uuid4().hex[:6]}"}).json()
        run = http.post("/runs", json={"experiment_id": experiment["id"]}).json()
        responses.append(
            http.post(f"/runs/{run['id']}/batch", json={"metrics": [{"key": "m", "value": 1, "step": huge}]})
        )
    assert all(400 <= r.status_code < 500 for r in responses), [(r.status_code, r.text) for r in responses]
