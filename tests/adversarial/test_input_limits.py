"""Limits on every input: bodies bounded while they stream, MLflow's LogBatch rules, numbers, archives.

Against a real ``quayside server`` subprocess, so that streaming and the server's memory
are real: a body over its route's limit is answered 413 without being held, a refused
batch leaves nothing in the run, and a hostile package archive is refused before
anything is unpacked or registered.
"""

from __future__ import annotations

import hashlib
import io
import json
import socket
import tarfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from quayside import save_model
from quayside.config import Settings
from quayside.errors import PayloadTooLargeError, UsageError
from quayside.packager.archive import extract_tar
from quayside.tracking.client import Client
from quayside.tracking.entities import Metric
from tests.db.fixtures import Server

MIB = 1 << 20
JSON_LIMIT = MIB  # the default QUAYSIDE_MAX_REQUEST_BYTES
UPLOAD_LIMIT = 64 * MIB  # this suite's QUAYSIDE_MAX_ARTIFACT_BYTES
TRACKING, REGISTRY, MLFLOW = "/api/tracking", "/api/registry", "/api/2.0/mlflow"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
TAR = {"content-type": "application/x-tar"}  # what a package upload declares (server/hardening.py)


@pytest.fixture(scope="module")
def server_settings() -> dict[str, str]:
    """The module's server (tests/adversarial/conftest.py): the default JSON limit, room for larger uploads."""
    return {"QUAYSIDE_MAX_ARTIFACT_BYTES": str(UPLOAD_LIMIT)}


@pytest.fixture
def mlflow_run(http: httpx.Client) -> str:
    response = http.post(f"{MLFLOW}/runs/create", json={"experiment_id": "0", "run_name": "limits"})
    assert response.status_code == 200, response.text
    return response.json()["run"]["info"]["run_id"]


@pytest.fixture
def run_id(http: httpx.Client) -> str:
    experiment = http.post(f"{TRACKING}/experiments", json={"name": "limits", "exist_ok": True}).json()
    return http.post(f"{TRACKING}/runs", json={"experiment_id": experiment["id"]}).json()["id"]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS line")


def zeros(total: int, chunk: int = MIB) -> Iterator[bytes]:
    """A body of ``total`` zero bytes, streamed: httpx sends it chunked, with no Content-Length."""
    block = bytes(chunk)
    for _ in range(total // chunk):
        yield block


# --- bodies bounded while they stream ----------------------------------------------------------


def test_a_chunked_100_mib_body_to_a_json_route_is_a_413_and_never_held_in_memory(
    http: httpx.Client, server: Server
):
    assert server.process is not None
    http.get("/health")
    before = rss_kib(server.process.pid)

    response = http.post(
        f"{TRACKING}/runs", content=zeros(100 * MIB), headers={"content-type": "application/json"}
    )

    grown_mib = (rss_kib(server.process.pid) - before) / 1024
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "QUAYSIDE_MAX_REQUEST_BYTES" in response.json()["error"]["message"]
    assert grown_mib < 30, f"the server's memory grew by {grown_mib:.0f} MiB reading a refused body"
    assert http.get("/health").status_code == 200


@pytest.mark.parametrize(
    ("path", "shape"),
    [
        (f"{TRACKING}/experiments", "quayside"),
        (f"{REGISTRY}/models", "quayside"),
        (f"{MLFLOW}/runs/log-batch", "mlflow"),
        (f"{MLFLOW}/experiments/create", "mlflow"),
        ("/ajax-api/2.0/mlflow/runs/search", "mlflow"),
    ],
)
@pytest.mark.parametrize("declared", [True, False], ids=["content-length", "chunked"])
def test_a_body_over_the_json_limit_is_a_413_in_the_routes_own_error_shape(
    http: httpx.Client, path: str, shape: str, declared: bool
):
    body = b" " * (JSON_LIMIT + 1) if declared else zeros(2 * MIB, 64 * 1024)
    response = http.post(path, content=body, headers={"content-type": "application/json"})
    assert response.status_code == 413
    if shape == "mlflow":
        assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        assert "limit" in response.json()["message"]
    else:
        assert response.json()["error"]["code"] == "payload_too_large"


def test_a_route_that_does_not_exist_reads_no_body(http: httpx.Client):
    json_type = {"content-type": "application/json"}
    declared = http.post("/no/such/route", content=b" " * (JSON_LIMIT + 1), headers=json_type)
    assert declared.status_code == 413
    streamed = http.post("/no/such/route", content=zeros(4 * MIB), headers=json_type)
    assert streamed.status_code == 404  # answered without reading: nothing was held either way


def test_a_declared_length_over_the_limit_is_refused_before_the_body_is_sent(server: Server):
    """Headers announcing 10 GiB, then nothing: the answer comes without the server waiting for the body."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            b"POST /api/tracking/runs HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: 10737418240\r\n\r\n"
        )
        answer = b""
        while b"payload_too_large" not in answer and (chunk := conn.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"payload_too_large" in answer


def test_a_body_within_the_limit_still_works(http: httpx.Client, run_id: str):
    params = {f"p{i}": "v" * 5000 for i in range(150)}  # 750 KB: under 1 MiB
    response = http.post(f"{TRACKING}/runs/{run_id}/batch", json={"params": params})
    assert response.status_code == 200, response.text
    assert len(http.get(f"{TRACKING}/runs/{run_id}").json()["params"]) == 150


@pytest.mark.parametrize("chunked", [True, False], ids=["chunked", "content-length"])
@pytest.mark.parametrize("route", ["quayside", "mlflow"])
def test_an_artifact_larger_than_the_json_limit_uploads_and_round_trips(
    http: httpx.Client, run_id: str, route: str, chunked: bool
):
    payload = hashlib.sha256(b"seed").digest() * (3 * MIB // 32 + 7)  # ~3 MiB, not a multiple of chunks
    body: Any = (payload[i : i + 65536] for i in range(0, len(payload), 65536)) if chunked else payload
    if route == "quayside":
        url, params = f"{TRACKING}/runs/{run_id}/artifacts/file", {"path": "data/big.bin"}
        uploaded = http.put(url, params=params, content=body)
        assert uploaded.status_code == 201, uploaded.text
        downloaded = http.get(url, params=params).content
    else:
        url = f"{MLFLOW_ARTIFACTS}/{run_id}/data/big.bin"
        uploaded = http.put(url, content=body)
        assert uploaded.status_code == 200, uploaded.text
        downloaded = http.get(url).content
    assert hashlib.sha256(downloaded).hexdigest() == hashlib.sha256(payload).hexdigest()


def test_an_artifact_over_the_upload_limit_is_a_413_and_leaves_nothing(
    http: httpx.Client, server: Server, run_id: str
):
    response = http.put(
        f"{TRACKING}/runs/{run_id}/artifacts/file",
        params={"path": "huge.bin"},
        content=zeros(UPLOAD_LIMIT + MIB),
    )
    assert response.status_code == 413
    assert "QUAYSIDE_MAX_ARTIFACT_BYTES" in response.json()["error"]["message"]
    assert http.get(f"{TRACKING}/runs/{run_id}/artifacts").json() == {"artifacts": []}
    run_dir = server.home / "artifacts" / "runs" / run_id
    assert not run_dir.exists() or not any(run_dir.rglob("*"))


def test_a_package_over_the_upload_limit_is_a_413_and_registers_nothing(http: httpx.Client, server: Server):
    name = f"huge-{uuid.uuid4().hex[:8]}"
    response = http.post(f"{REGISTRY}/models/{name}/versions", content=zeros(UPLOAD_LIMIT + MIB), headers=TAR)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"
    assert "QUAYSIDE_MAX_ARTIFACT_BYTES" in response.json()["error"]["message"]
    assert http.get(f"{REGISTRY}/models/{name}").status_code == 404
    assert not list((server.home / "artifacts").rglob("package.tar"))  # the spooled upload is gone


@pytest.mark.parametrize(
    "request_line",
    [
        f"PUT {TRACKING}/runs/{'0' * 32}/artifacts/file?path=a.bin",
        f"POST {REGISTRY}/models/declared/versions",
        f"PUT {MLFLOW_ARTIFACTS}/{'0' * 32}/a.bin",
    ],
    ids=["artifact", "package", "mlflow-artifact"],
)
def test_an_upload_declaring_more_than_the_upload_limit_is_refused_before_the_body_is_sent(
    server: Server, request_line: str
):
    with socket.create_connection(("127.0.0.1", server.port), timeout=30) as conn:
        conn.sendall(
            f"{request_line} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {UPLOAD_LIMIT + 1}\r\n\r\n".encode()
        )
        answer = b""
        while b"QUAYSIDE_MAX_ARTIFACT_BYTES" not in answer and (chunk := conn.recv(65536)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 413")
    assert b"QUAYSIDE_MAX_ARTIFACT_BYTES" in answer


@pytest.mark.parametrize("route", ["quayside", "mlflow"])
@pytest.mark.parametrize("path", ["f.txt/under", "f.txt/deeper/under"])
def test_an_artifact_under_an_existing_file_is_a_400_not_a_500(
    http: httpx.Client, run_id: str, route: str, path: str
):
    file_url = f"{TRACKING}/runs/{run_id}/artifacts/file"
    assert http.put(file_url, params={"path": "f.txt"}, content=b"x").status_code == 201
    if route == "quayside":
        response = http.put(file_url, params={"path": path}, content=b"y")
    else:
        response = http.put(f"{MLFLOW_ARTIFACTS}/{run_id}/{path}", content=b"y")
    assert response.status_code == 400, response.text
    assert "'f.txt', which is a file" in response.text
    assert http.get(file_url, params={"path": "f.txt"}).content == b"x"
    listed = http.get(f"{TRACKING}/runs/{run_id}/artifacts", params={"recursive": True}).json()
    assert [a["path"] for a in listed["artifacts"]] == ["f.txt"]


# --- MLflow's LogBatch ------------------------------------------------------------------------


def metric(key: str = "m", value: Any = 1.0, step: int = 0) -> dict[str, Any]:
    return {"key": key, "value": value, "timestamp": 1_700_000_000_000, "step": step}


def kv(key: str, value: str = "v") -> dict[str, str]:
    return {"key": key, "value": value}


# A valid canary in every batch: after a refusal, the run must not hold it.
CANARY = {"metrics": [metric("canary")], "params": [kv("canary")], "tags": [kv("canary")]}


def batch(**parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {key: CANARY[key] + parts.get(key, []) for key in CANARY}


REFUSED_BATCHES: list[tuple[str, dict[str, Any], int, str]] = [
    ("1,001 metrics", batch(metrics=[metric(f"m{i}") for i in range(1000)]), 400, "at most 1000 metrics"),
    ("101 params", batch(params=[kv(f"p{i}") for i in range(100)]), 400, "at most 100 params"),
    ("101 tags", batch(tags=[kv(f"t{i}") for i in range(100)]), 400, "at most 100 tags"),
    (
        "1,001 entities",
        batch(metrics=[metric(f"m{i}") for i in range(900)], params=[kv(f"p{i}") for i in range(98)]),
        400,
        "at most 1000 metrics, params, and tags",
    ),
    (
        "1.01 MB body",  # within the server's 1 MiB, over MLflow's 1,000,000 bytes
        batch(
            params=[kv(f"p{i}", "x" * 6000) for i in range(35)],
            tags=[kv(f"t{i}", "y" * 8000) for i in range(99)],
        ),
        400,
        "at most 1000000 bytes",
    ),
    (
        "1.2 MB body",  # over the server's own 1 MiB: cut off while it streams
        batch(
            params=[kv(f"p{i}", "x" * 6000) for i in range(60)],
            tags=[kv(f"t{i}", "y" * 8000) for i in range(99)],
        ),
        413,
        "limit",
    ),
    (
        "one param twice, two values",
        batch(params=[kv("p", "1"), kv("p", "2")]),
        400,
        "Duplicate parameter keys",
    ),
    (
        "one param twice, one value",
        batch(params=[kv("p", "1"), kv("p", "1")]),
        400,
        "Duplicate parameter keys",
    ),
    ("boolean metric", batch(metrics=[metric("b", True)]), 400, "not true"),
    ("boolean false metric", batch(metrics=[metric("b", False)]), 400, "not false"),
    ("string metric", batch(metrics=[metric("s", "high")]), 400, "must be a number"),
    ("null metric", batch(metrics=[metric("s", None)]), 400, "value"),
    ("object metric", batch(metrics=[metric("s", {"a": 1})]), 400, "value"),
    ("param value of 6,001", batch(params=[kv("long", "x" * 6001)]), 400, "6000"),
    ("tag value of 8,001", batch(tags=[kv("long", "x" * 8001)]), 400, "8000"),
    ("metric key of 251", batch(metrics=[metric("k" * 251)]), 400, "250"),
    ("param key of 251", batch(params=[kv("k" * 251)]), 400, "250"),
    ("tag key of 251", batch(tags=[kv("k" * 251)]), 400, "250"),
    (
        "negative timestamp",
        batch(metrics=[{"key": "t", "value": 1, "timestamp": -1, "step": 0}]),
        400,
        "timestamp",
    ),
    ("step beyond 64 bits", batch(metrics=[metric("s", 1.0, 2**63)]), 400, "step"),
]


def run_data(http: httpx.Client, run_id: str) -> dict[str, Any]:
    data = http.get(f"{MLFLOW}/runs/get", params={"run_id": run_id}).json()["run"]["data"]
    tags = {t["key"]: t["value"] for t in data.get("tags", []) if not t["key"].startswith("mlflow.")}
    return {
        "metrics": {m["key"]: m["value"] for m in data.get("metrics", [])},
        "params": {p["key"]: p["value"] for p in data.get("params", [])},
        "tags": tags,
    }


@pytest.mark.parametrize(
    ("body", "status", "message"),
    [case[1:] for case in REFUSED_BATCHES],
    ids=[case[0] for case in REFUSED_BATCHES],
)
def test_mlflow_log_batch_refuses_as_mlflow_does_and_writes_nothing(
    http: httpx.Client, mlflow_run: str, body: dict[str, Any], status: int, message: str
):
    response = http.post(f"{MLFLOW}/runs/log-batch", json={"run_id": mlflow_run} | body)
    assert response.status_code == status, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]
    assert run_data(http, mlflow_run) == {"metrics": {}, "params": {}, "tags": {}}


def test_mlflow_log_batch_at_its_limits_is_accepted(http: httpx.Client, mlflow_run: str):
    body = {
        "run_id": mlflow_run,
        "metrics": [metric(f"m{i}") for i in range(800)],
        "params": [kv(f"p{i}", "x" * 6000) for i in range(100)],
        "tags": [kv(f"t{i}", "t") for i in range(100)],
    }
    assert len(json.dumps(body)) <= 1_000_000
    response = http.post(f"{MLFLOW}/runs/log-batch", json=body)
    assert response.status_code == 200, response.text
    data = run_data(http, mlflow_run)
    assert (len(data["metrics"]), len(data["params"]), len(data["tags"])) == (800, 100, 100)


def strict_json(text: str) -> Any:
    """JSON as the standard has it: NaN and Infinity are not literals of it."""

    def refuse(constant: str) -> Any:
        raise AssertionError(f"the response holds {constant}, which is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_mlflow_non_finite_metrics_are_accepted_and_round_trip(http: httpx.Client, mlflow_run: str):
    points = [
        metric("m", "NaN", 0),
        metric("m", "Infinity", 1),
        metric("m", "-Infinity", 2),
        metric("m", 1e308, 3),
    ]
    response = http.post(f"{MLFLOW}/runs/log-batch", json={"run_id": mlflow_run, "metrics": points})
    assert response.status_code == 200, response.text
    history = http.get(f"{MLFLOW}/metrics/get-history", params={"run_id": mlflow_run, "metric_key": "m"})
    assert history.status_code == 200
    assert [m["value"] for m in history.json()["metrics"]] == ["NaN", "Infinity", "-Infinity", 1e308]
    strict_json(http.get(f"{MLFLOW}/runs/get", params={"run_id": mlflow_run}).text)


def test_mlflow_changing_a_logged_param_is_invalid_and_the_rest_of_the_batch_is_not_written(
    http: httpx.Client, mlflow_run: str
):
    assert (
        http.post(
            f"{MLFLOW}/runs/log-parameter", json={"run_id": mlflow_run, "key": "p", "value": "1"}
        ).status_code
        == 200
    )
    same = http.post(f"{MLFLOW}/runs/log-batch", json={"run_id": mlflow_run, "params": [kv("p", "1")]})
    assert same.status_code == 200  # the same value again is a no-op, as on MLflow

    changed = http.post(
        f"{MLFLOW}/runs/log-batch",
        json={"run_id": mlflow_run} | batch(params=[kv("p", "2")], tags=[kv("mlflow.runName", "renamed")]),
    )
    assert changed.status_code == 400
    assert changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert run_data(http, mlflow_run) == {"metrics": {}, "params": {"p": "1"}, "tags": {}}
    run = http.get(f"{MLFLOW}/runs/get", params={"run_id": mlflow_run}).json()["run"]
    assert run["info"]["run_name"] == "limits"  # the rename in the refused batch did not happen either


def test_mlflow_a_refused_batch_leaves_its_logged_models_metrics_unwritten_too(
    http: httpx.Client, mlflow_run: str
):
    run = http.get(f"{MLFLOW}/runs/get", params={"run_id": mlflow_run}).json()["run"]["info"]
    created = http.post(
        f"{MLFLOW}/logged-models", json={"experiment_id": run["experiment_id"], "source_run_id": mlflow_run}
    )
    assert created.status_code == 200, created.text
    model_id = created.json()["model"]["info"]["model_id"]
    assert (
        http.post(
            f"{MLFLOW}/runs/log-parameter", json={"run_id": mlflow_run, "key": "p", "value": "1"}
        ).status_code
        == 200
    )

    refused = http.post(
        f"{MLFLOW}/runs/log-batch",
        json={
            "run_id": mlflow_run,
            "metrics": [metric("acc") | {"model_id": model_id}],
            "params": [kv("p", "2")],
        },
    )

    assert refused.status_code == 400
    model = http.get(f"{MLFLOW}/logged-models/{model_id}").json()["model"]
    assert model["data"]["metrics"] == []
    assert run_data(http, mlflow_run)["metrics"] == {}


SINGLE_ROUTES = [
    ("log-metric", {"key": "b", "value": True, "timestamp": 1, "step": 0}, "not true"),
    ("log-metric", {"key": "s", "value": "high", "timestamp": 1, "step": 0}, "must be a number"),
    ("log-metric", {"key": "k" * 251, "value": 1, "timestamp": 1, "step": 0}, "250"),
    ("log-parameter", {"key": "long", "value": "x" * 6001}, "6000"),
    ("log-parameter", {"key": "k" * 251, "value": "v"}, "250"),
    ("set-tag", {"key": "long", "value": "x" * 8001}, "8000"),
]


@pytest.mark.parametrize(
    ("route", "body", "message"), SINGLE_ROUTES, ids=[f"{r}:{m}" for r, _b, m in SINGLE_ROUTES]
)
def test_mlflow_single_logging_routes_apply_the_same_rules(
    http: httpx.Client, mlflow_run: str, route: str, body: dict[str, Any], message: str
):
    response = http.post(f"{MLFLOW}/runs/{route}", json={"run_id": mlflow_run} | body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]
    assert run_data(http, mlflow_run) == {"metrics": {}, "params": {}, "tags": {}}


# --- Quayside's own batch route and Python client -------------------------------------------


def raw_json(http: httpx.Client, url: str, text: str) -> httpx.Response:
    return http.post(url, content=text.encode(), headers={"content-type": "application/json"})


def qbatch(**parts: Any) -> str:
    """A Quayside batch with a valid canary metric, param and tag beside the given parts."""
    body: dict[str, Any] = {
        "metrics": [{"key": "canary", "value": 1}],
        "params": {"canary": "v"},
        "tags": {"canary": "v"},
    }
    body["metrics"] += parts.get("metrics", [])
    body["params"] |= parts.get("params", {})
    body["tags"] |= parts.get("tags", {})
    return json.dumps(body)


QUAYSIDE_REFUSED: list[tuple[str, str, int, str]] = [
    (
        "10,001 metrics",
        qbatch(metrics=[{"key": "m", "value": 1, "step": i} for i in range(10_000)]),
        400,
        "10000",
    ),
    ("1,001 params", qbatch(params={f"p{i}": "v" for i in range(1000)}), 400, "1000"),
    ("1,001 tags", qbatch(tags={f"t{i}": "v" for i in range(1000)}), 400, "1000"),
    ("one param twice, two values", qbatch()[:-1] + ', "params": {"p": "1", "p": "2"}}', 400, "'p'"),
    ("one param twice, one value", '{"params": {"canary": "v", "p": "1", "p": "1"}}', 400, "more than once"),
    ("one tag twice", '{"tags": {"canary": "v", "t": "1", "t": "2"}}', 400, "more than once"),
    ("boolean metric", qbatch(metrics=[{"key": "b", "value": True}]), 400, "not true"),
    ("string metric", qbatch(metrics=[{"key": "s", "value": "high"}]), 400, "must be a number"),
    ("param value of 6,001", qbatch(params={"long": "x" * 6001}), 400, "6000"),
    ("tag value of 8,001", qbatch(tags={"long": "x" * 8001}), 400, "8000"),
    ("metric key of 251", qbatch(metrics=[{"key": "k" * 251, "value": 1}]), 400, "250"),
    ("param key of 251", qbatch(params={"k" * 251: "v"}), 400, "250"),
    (
        "body over 1 MiB",
        qbatch(params={f"p{i}": "x" * 6000 for i in range(200)}),
        413,
        "QUAYSIDE_MAX_REQUEST_BYTES",
    ),
]


@pytest.mark.parametrize(
    ("text", "status", "message"),
    [case[1:] for case in QUAYSIDE_REFUSED],
    ids=[case[0] for case in QUAYSIDE_REFUSED],
)
def test_quayside_log_batch_refuses_and_writes_nothing(
    http: httpx.Client, run_id: str, text: str, status: int, message: str
):
    response = raw_json(http, f"{TRACKING}/runs/{run_id}/batch", text)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    run = http.get(f"{TRACKING}/runs/{run_id}").json()
    assert (run["metrics"], run["params"], run["tags"]) == ([], {}, {})


def test_quayside_changing_a_logged_param_is_a_409_and_the_rest_of_the_batch_is_not_written(
    http: httpx.Client, run_id: str
):
    url = f"{TRACKING}/runs/{run_id}/batch"
    assert http.post(url, json={"params": {"p": "1"}}).status_code == 200
    assert http.post(url, json={"params": {"p": "1"}}).status_code == 200  # the same value: a no-op
    changed = raw_json(http, url, qbatch(params={"p": "2"}))
    assert changed.status_code == 409
    run = http.get(f"{TRACKING}/runs/{run_id}").json()
    assert (run["metrics"], run["params"], run["tags"]) == ([], {"p": "1"}, {})


def test_quayside_non_finite_metrics_round_trip(http: httpx.Client, run_id: str):
    body = {
        "metrics": [
            {"key": k, "value": v} for k, v in [("nan", "NaN"), ("inf", "Infinity"), ("ninf", "-Infinity")]
        ]
    }
    assert http.post(f"{TRACKING}/runs/{run_id}/batch", json=body).status_code == 200
    literals = '{"metrics": [{"key": "lit", "value": NaN}, {"key": "big", "value": 1e999}]}'  # Python's JSON reads these
    assert raw_json(http, f"{TRACKING}/runs/{run_id}/batch", literals).status_code == 200
    metrics = {
        m["key"]: m["value"] for m in strict_json(http.get(f"{TRACKING}/runs/{run_id}").text)["metrics"]
    }
    assert metrics == {"nan": "NaN", "inf": "Infinity", "ninf": "-Infinity", "lit": "NaN", "big": "Infinity"}


@pytest.mark.parametrize("where", ["local", "server"])
@pytest.mark.parametrize(
    "log",
    [
        lambda c, run: c.log_metric(run, "x", True),
        lambda c, run: c.log_metrics(run, {"x": False}),
        lambda c, run: c.log_batch(run, metrics=[Metric("x", True)]),  # type: ignore[arg-type]
        lambda c, run: c.log_metric(run, "x", "high"),
    ],
    ids=["log_metric", "log_metrics", "log_batch", "string"],
)
def test_the_python_client_refuses_a_metric_that_is_not_a_number(
    server: Server, tmp_path: Path, where: str, log: Callable[[Client, str], None]
):
    uri = server.url if where == "server" else None
    client = Client(settings=Settings(home=tmp_path, tracking_uri=uri))
    run = client.create_run(f"numbers-{uuid.uuid4().hex[:8]}")
    with pytest.raises(UsageError, match="must be a number"):
        log(client, run.id)
    assert client.get_run(run.id).metrics == {}


# --- package archives ----------------------------------------------------------------------


def tar_of(*members: tuple[tarfile.TarInfo, bytes | None], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=fmt) as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def entry(
    name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", **fields: Any
) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.size = len(data) if kind == tarfile.REGTYPE else 0
    for key, value in fields.items():
        setattr(info, key, value)
    return info, data if kind == tarfile.REGTYPE else None


def many_empty_members(count: int) -> bytes:
    return tar_of(*(entry(f"f{i}") for i in range(count)))


def declared_10_gib() -> Iterator[bytes]:
    """A member whose header declares 10 GiB of zeros, then the first MiB of them: streamed, never built."""
    info = tarfile.TarInfo("weights.bin")
    info.size = 10 << 30
    yield info.tobuf(tarfile.PAX_FORMAT)
    yield from zeros(MIB)


def sparse_10_gib() -> bytes:
    """A GNU sparse member (pax 0.1): no data in the archive, 10 GiB of zeros when unpacked."""
    info = tarfile.TarInfo("weights.bin")
    info.pax_headers = {"GNU.sparse.map": "0,0", "GNU.sparse.size": str(10 << 30)}
    return tar_of((info, b""))


def gzipped(data: bytes) -> bytes:
    import gzip

    return gzip.compress(data)


ARCHIVE_BOMBS: list[tuple[str, Callable[[], Any], int, str]] = [
    ("12,000 empty members", lambda: many_empty_members(12_000), 413, "more than 10000 entries"),
    ("a member declaring 10 GiB", declared_10_gib, 413, "unpacks to more than"),
    ("a sparse member of 10 GiB", sparse_10_gib, 400, "sparse"),
    ("../x", lambda: tar_of(entry("../x", data=b"escaped")), 400, "escapes"),
    ("a/../../x", lambda: tar_of(entry("a/../../x", data=b"escaped")), 400, "escapes"),
    ("/etc/x", lambda: tar_of(entry("/etc/x", data=b"escaped")), 400, "absolute"),
    ("a directory ../d", lambda: tar_of(entry("../d", tarfile.DIRTYPE)), 400, "escapes"),
    (
        "a symlink",
        lambda: tar_of(entry("link", tarfile.SYMTYPE, linkname="/etc/passwd")),
        400,
        "symbolic link",
    ),
    (
        "a hard link",
        lambda: tar_of(entry("a", data=b"x"), entry("link", tarfile.LNKTYPE, linkname="a")),
        400,
        "hard link",
    ),
    (
        "a character device",
        lambda: tar_of(entry("dev", tarfile.CHRTYPE, devmajor=1, devminor=3)),
        400,
        "device",
    ),
    ("a block device", lambda: tar_of(entry("dev", tarfile.BLKTYPE, devmajor=8, devminor=0)), 400, "device"),
    ("a FIFO", lambda: tar_of(entry("fifo", tarfile.FIFOTYPE)), 400, "FIFO"),
    ("a file twice", lambda: tar_of(entry("a", data=b"1"), entry("a", data=b"2")), 400, "twice"),
    (
        "a file under a file",
        lambda: tar_of(entry("a", data=b"1"), entry("a/b", data=b"2")),
        400,
        "both a file",
    ),
    ("a name of 300 bytes", lambda: tar_of(entry("n" * 300, data=b"1")), 400, "too long"),
    (
        "a 2 MiB pax header",
        lambda: tar_of(entry("a", data=b"1", pax_headers={"comment": "c" * (2 * MIB)})),
        413,
        "header",
    ),
    ("gzip", lambda: gzipped(tar_of(entry("quayside.yaml", data=b"{}"))), 400, "tar archive"),
    ("not a tar", lambda: b"not a tar" * 100, 400, "tar archive"),
]


def files_in(root: Path) -> set[Path]:
    return {p.relative_to(root) for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [case[1:] for case in ARCHIVE_BOMBS],
    ids=[case[0] for case in ARCHIVE_BOMBS],
)
def test_a_hostile_package_archive_is_refused_and_nothing_is_unpacked_or_registered(
    http: httpx.Client, server: Server, make: Callable[[], Any], status: int, message: str
):
    name = f"bomb-{uuid.uuid4().hex[:8]}"
    artifacts = server.home / "artifacts"
    before = files_in(artifacts) if artifacts.exists() else set()

    response = http.post(f"{REGISTRY}/models/{name}/versions", content=make(), headers=TAR)

    assert response.status_code == status, response.text
    assert message in response.json()["error"]["message"]
    assert http.get(f"{REGISTRY}/models/{name}").status_code == 404
    after = files_in(artifacts) if artifacts.exists() else set()
    assert after == before
    assert not (server.home.parent / "x").exists() and not Path("/etc/x").exists()


def test_a_package_larger_than_the_json_limit_registers(
    http: httpx.Client, server: Server, tmp_path: Path, iris_classifier, iris
):
    package = tmp_path / "pkg"
    save_model(iris_classifier, package, input_example=iris[0].head(5))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            archive.add(path, arcname=path.relative_to(package).as_posix())
        padding = tarfile.TarInfo("unlisted-padding.bin")  # not in the manifest: not kept, but uploaded
        padding.size = 3 * MIB
        archive.addfile(padding, io.BytesIO(bytes(padding.size)))
    name = f"big-{uuid.uuid4().hex[:8]}"
    body = buffer.getvalue()
    assert len(body) > JSON_LIMIT

    response = http.post(
        f"{REGISTRY}/models/{name}/versions",
        content=(body[i : i + MIB] for i in range(0, len(body), MIB)),
        headers=TAR,
    )

    assert response.status_code == 201, response.text
    assert response.json()["version"] == 1


@pytest.mark.parametrize(
    ("make", "status", "message"),
    [case[1:] for case in ARCHIVE_BOMBS if case[0] != "a member declaring 10 GiB"],
    ids=[case[0] for case in ARCHIVE_BOMBS if case[0] != "a member declaring 10 GiB"],
)
def test_extract_tar_refuses_before_creating_the_destination(
    tmp_path: Path, make: Callable[[], Any], status: int, message: str
):
    destination = tmp_path / "out"
    with pytest.raises((UsageError, PayloadTooLargeError), match=message.replace("(", r"\(")) as refused:
        extract_tar(io.BytesIO(make()), destination, max_bytes=UPLOAD_LIMIT)
    assert refused.value.http_status == status
    assert not destination.exists()
    assert not (tmp_path / "x").exists()


def test_extract_tar_unpacks_a_plain_archive(tmp_path: Path):
    archive = tar_of(
        entry(".", tarfile.DIRTYPE), entry("d", tarfile.DIRTYPE), entry("d/a.txt", data=b"hello")
    )
    extract_tar(io.BytesIO(archive), tmp_path / "out", max_bytes=100, max_entries=3)
    assert (tmp_path / "out" / "d" / "a.txt").read_bytes() == b"hello"
    with pytest.raises(PayloadTooLargeError, match="more than 4 bytes"):
        extract_tar(io.BytesIO(archive), tmp_path / "small", max_bytes=4)
