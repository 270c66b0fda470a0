"""``quayside serve --memory-budget-mb``: more models than fit, each loaded again when asked for.

Three ONNX models in one server whose budget fits two of them: the least recently used idle
one is evicted, a request to it loads it again (over REST and gRPC) and still answers exactly as
its package does, and the loads, evictions and reload waits show in ``/metrics``.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton

import quayside
from quayside.packager.manifest import read_manifest
from tests.serving.conftest import RunningServer, free_port, start_server, v2_error
from tests.serving.registry_versions import iris, save_forest

NAMES = ("alpha", "beta", "gamma")


@pytest.fixture(scope="module")
def rows() -> np.ndarray:
    return iris()[0]


@pytest.fixture(scope="module")
def packages(tmp_path_factory) -> dict[str, Path]:
    """Three forests of the same size (same shape of trees), each predicting differently."""
    root = tmp_path_factory.mktemp("budget")
    return {
        name: save_forest(root / name, seed=seed, name=name, trees=8, depth=4)
        for seed, name in enumerate(NAMES)
    }


def model_bytes(package: Path) -> int:
    """What a package counts against a budget: its ONNX file (the file the runtime loads)."""
    manifest = read_manifest(package)
    assert manifest.onnx is not None
    return manifest.file(manifest.onnx.file).size


@pytest.fixture(scope="module")
def budget_mb(packages) -> float:
    """Room for two of the three models, not three."""
    largest = max(model_bytes(path) for path in packages.values())
    smallest = min(model_bytes(path) for path in packages.values())
    budget = 2 * largest + smallest / 2
    assert budget < 3 * smallest
    return budget / 1e6


def start_budgeted(packages: dict[str, Path], budget_mb: float, *args: str, log_dir: Path) -> RunningServer:
    """One server of the three models under the budget."""
    first, *others = (packages[name] for name in NAMES)
    return start_server(
        first, *map(str, others), "--memory-budget-mb", str(budget_mb), "--quiet", *args, log_dir=log_dir
    )


@pytest.fixture(scope="module")
def server(packages, budget_mb, tmp_path_factory) -> Iterator[RunningServer]:
    grpc_port = free_port()
    running = start_budgeted(
        packages, budget_mb, "--grpc-port", str(grpc_port), log_dir=tmp_path_factory.mktemp("log")
    )
    running.grpc_address = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    yield running
    running.stop()


def expected(packages: dict[str, Path], name: str, rows: np.ndarray) -> np.ndarray:
    return quayside.load_model(packages[name]).predict(rows)["label"]


def infer(url: str, name: str, rows: np.ndarray) -> np.ndarray:
    body = {
        "inputs": [
            {"name": "input", "datatype": "FP32", "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ]
    }
    response = httpx.post(f"{url}/v2/models/{name}/infer", json=body, timeout=30)
    assert response.status_code == 200, response.text
    assert response.headers["quayside-model-name"] == name
    outputs = {output["name"]: output for output in response.json()["outputs"]}
    return np.asarray(outputs["label"]["data"])


def index(url: str) -> dict[str, tuple[str, str]]:
    response = httpx.post(f"{url}/v2/repository/index", json={}, timeout=10)
    assert response.status_code == 200, response.text
    return {entry["name"]: (entry["state"], entry.get("reason", "")) for entry in response.json()}


def metric(url: str, name: str, model: str) -> float:
    text = httpx.get(f"{url}/metrics", timeout=10).text
    pattern = rf'^{name}\{{model="{model}",version=""\}} ([0-9.e+]+)$'
    found = re.search(pattern, text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def loaded(server: RunningServer) -> set[str]:
    return {name for name, (state, reason) in index(server.url).items() if state == "READY" and not reason}


def test_a_start_with_more_models_than_fit_evicts_the_first_given(server):
    entries = index(server.url)
    assert set(entries) == set(NAMES)
    assert all(state == "READY" for state, _ in entries.values())  # an evicted model still answers
    assert loaded(server) == {"beta", "gamma"}
    assert "evicted by the memory budget" in entries["alpha"][1]
    assert metric(server.url, "quayside_model_evictions_total", "alpha") == 1
    assert httpx.get(f"{server.url}/v2/models/alpha/ready", timeout=5).status_code == 200


def test_a_request_to_an_evicted_model_evicts_the_least_recently_used_and_answers(server, packages, rows):
    # beta was loaded before gamma; used last, it is gamma that is now the least recently used
    # (the fast path's V2 requests count as uses as much as any other route's).
    infer(server.url, "beta", rows[:3])
    assert np.array_equal(infer(server.url, "alpha", rows), expected(packages, "alpha", rows))
    assert loaded(server) == {"alpha", "beta"}
    assert metric(server.url, "quayside_model_evictions_total", "gamma") >= 1
    assert metric(server.url, "quayside_model_reload_wait_seconds_count", "alpha") >= 1
    assert metric(server.url, "quayside_model_loads_total", "alpha") >= 1
    assert metric(server.url, "quayside_model_memory_bytes", "gamma") == 0

    # gRPC reaches an evicted model the same way.
    client = triton.InferenceServerClient(server.grpc_address)  # type: ignore[attr-defined]
    tensor = triton.InferInput("input", list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows)
    answer = client.infer("gamma", [tensor]).as_numpy("label")
    assert np.array_equal(answer, expected(packages, "gamma", rows))
    assert "gamma" in loaded(server) and len(loaded(server)) == 2


def test_three_models_answer_concurrently_within_a_budget_of_two(server, packages, rows):
    wanted = {name: expected(packages, name, rows) for name in NAMES}

    async def call(client: httpx.AsyncClient, name: str) -> tuple[str, np.ndarray]:
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(rows.shape),
                    "data": rows.ravel().tolist(),
                }
            ]
        }
        for _ in range(5):  # a model whose peers are all busy answers 503 until one is idle
            response = await client.post(f"/v2/models/{name}/infer", json=body)
            if response.status_code != 503:
                break
            await asyncio.sleep(0.2)
        assert response.status_code == 200, response.text
        outputs = {output["name"]: output for output in response.json()["outputs"]}
        return name, np.asarray(outputs["label"]["data"])

    async def run() -> list[tuple[str, np.ndarray]]:
        async with httpx.AsyncClient(base_url=server.url, timeout=60) as client:
            return await asyncio.gather(*(call(client, NAMES[i % 3]) for i in range(30)))

    for name, answer in asyncio.run(run()):
        assert np.array_equal(answer, wanted[name]), name
    assert len(loaded(server)) <= 2


def test_a_model_evicted_then_unloaded_stays_unloaded(packages, budget_mb, tmp_path, rows):
    running = start_budgeted(packages, budget_mb, "--model-control", log_dir=tmp_path)
    try:
        assert httpx.post(f"{running.url}/v2/repository/models/alpha/unload", timeout=10).status_code == 200
        response = httpx.post(f"{running.url}/v2/models/alpha/infer", json={"inputs": []}, timeout=10)
        assert response.status_code == 404
        assert "unloaded" in v2_error(response)[1]
        assert index(running.url)["alpha"][0] == "UNAVAILABLE"
    finally:
        running.stop()


def test_a_model_larger_than_the_whole_budget_is_refused_at_start_in_one_line(packages):
    result = subprocess.run(
        [sys.executable, "-m", "quayside", "serve", str(packages["alpha"]), "--memory-budget-mb", "0.001"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert "Traceback" not in result.stderr
    assert lines[-1].startswith("error: model 'alpha' needs"), result.stderr
    assert "--memory-budget-mb" in lines[-1]
