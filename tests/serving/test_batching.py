"""Adaptive batching: merged model calls, and each caller gets exactly its own rows."""

from __future__ import annotations

import asyncio
import re
import threading
from concurrent.futures import ThreadPoolExecutor

import httpx
import numpy as np
import pytest

import quayside
from quayside.errors import SignatureError
from quayside.serving.batching import Batcher, merge_rows, split_rows


def test_merge_then_split_gives_each_request_its_rows():
    parts = [{"x": np.full((n, 2), i, dtype=np.float32)} for i, n in enumerate([1, 3, 2])]
    merged = merge_rows(parts)
    assert merged["x"].shape == (6, 2)
    back = split_rows({"y": merged["x"][:, 0] * 10}, [1, 3, 2])
    assert [p["y"].tolist() for p in back] == [[0.0], [10.0, 10.0, 10.0], [20.0, 20.0]]


def test_split_refuses_outputs_with_the_wrong_number_of_rows():
    with pytest.raises(Exception, match="returned 2 rows"):
        split_rows({"y": np.zeros(2)}, [1, 2])


class RecordingModel:
    """Doubles its input; records the rows of every call; fails on a negative value."""

    def __init__(self, delay: float = 0.0) -> None:
        self.calls: list[int] = []
        self.delay = delay
        self.lock = threading.Lock()

    def __call__(self, inputs):
        x = inputs["x"]
        with self.lock:
            self.calls.append(len(x))
        if (x < 0).any():
            raise SignatureError("negative input")
        if self.delay:
            threading.Event().wait(self.delay)
        return {"y": x * 2}


def run_batcher(model, requests, *, max_batch_size=64, max_batch_latency_ms=2.0):
    async def main():
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(
                model, pool, max_batch_size=max_batch_size, max_batch_latency_ms=max_batch_latency_ms
            )
            await batcher.start()
            try:
                return await asyncio.gather(
                    *(batcher.submit(r, len(r["x"])) for r in requests), return_exceptions=True
                )
            finally:
                await batcher.stop()

    return asyncio.run(main())


def test_concurrent_requests_share_model_calls_and_get_their_own_rows():
    model = RecordingModel(delay=0.01)
    requests = [{"x": np.arange(i, i + (i % 3) + 1, dtype=np.float64)} for i in range(200)]
    results = run_batcher(model, requests)
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)
    assert len(model.calls) < len(requests)
    assert max(model.calls) <= 64
    assert sum(model.calls) == sum(len(r["x"]) for r in requests)


def test_a_lone_request_does_not_wait_for_company():
    model = RecordingModel()
    (result,) = run_batcher(model, [{"x": np.ones(3)}], max_batch_latency_ms=10_000)
    assert result["y"].tolist() == [2.0, 2.0, 2.0]


def test_a_bad_request_fails_alone_and_its_batch_neighbours_succeed():
    model = RecordingModel(delay=0.01)
    requests = [{"x": np.array([float(i)])} for i in range(20)]
    requests[7] = {"x": np.array([-1.0])}
    results = run_batcher(model, requests)
    assert isinstance(results[7], SignatureError)
    for i, result in enumerate(results):
        if i != 7:
            assert result["y"].tolist() == [2.0 * i]


def _histogram(metrics: str, name: str) -> dict[str, float]:
    return {
        le: float(value) for le, value in re.findall(rf'{name}_bucket{{le="([^"]+)"}} ([0-9.e+]+)', metrics)
    }


def test_200_concurrent_requests_each_get_their_own_rows_and_batches_form(tensor_package, tmp_path):
    from tests.serving.conftest import start_server

    server = start_server(tensor_package, "--quiet", log_dir=tmp_path)
    rng = np.random.default_rng(3)
    rows = rng.normal(0, 0.05, size=(200, 10))
    expected = quayside.load_model(tensor_package).predict(rows)["prediction"]

    async def one(client: httpx.AsyncClient, i: int) -> float:
        body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 10], "data": rows[i].tolist()}]}
        response = await client.post(f"{server.url}/v2/models/diabetes/infer", json=body)
        assert response.status_code == 200, response.text
        return response.json()["outputs"][0]["data"][0]

    async def all_at_once() -> list[float]:
        limits = httpx.Limits(max_connections=200, max_keepalive_connections=200)
        async with httpx.AsyncClient(limits=limits, timeout=30) as client:
            return await asyncio.gather(*(one(client, i) for i in range(200)))

    try:
        got = asyncio.run(all_at_once())
        np.testing.assert_allclose(got, expected, rtol=1e-6)
        requests_per_call = _histogram(httpx.get(f"{server.url}/metrics").text, "quayside_batch_requests")
        single, total = requests_per_call["1.0"], requests_per_call["+Inf"]
        assert total > single, f"no model call merged requests: {requests_per_call}"
    finally:
        assert server.stop() == 0
