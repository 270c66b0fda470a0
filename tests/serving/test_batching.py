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
from quayside.serving.dispatch import CallCost, ModelCalls


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


def run_batcher(model, requests, *, max_batch_size=64, max_batch_latency_ms=2.0, cost=None, slots=1):
    """Submit every request at once; ``cost`` (a CallCost) lets cheap calls run inline on the loop."""

    async def main():
        with ThreadPoolExecutor(slots) as pool:
            calls = ModelCalls(model, pool, cost)
            batcher = Batcher(
                calls,
                max_batch_size=max_batch_size,
                max_batch_latency_ms=max_batch_latency_ms,
                slots=slots,
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
        le: float(value)
        for le, value in re.findall(
            rf'{name}_bucket{{le="([^"]+)",model="diabetes",version=""}} ([0-9.e+]+)', metrics
        )
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


CHEAP = CallCost(fixed_us=1.0, per_row_us=0.1)
"""A model cost far under the inline threshold: its calls run on the event loop."""
DEAR = CallCost(fixed_us=10_000.0, per_row_us=100.0)
"""A model cost far over it: its calls run in the thread pool."""
BY_THE_ROW = CallCost(fixed_us=200.0, per_row_us=100.0)
"""A model whose cost is nearly all per row: merging its requests saves next to nothing."""


class ThreadRecordingModel(RecordingModel):
    """Also records the thread each call ran on, and the most calls that ran at once."""

    def __init__(self, delay: float = 0.0) -> None:
        super().__init__(delay)
        self.threads: list[str] = []
        self.running = 0
        self.most_at_once = 0

    def __call__(self, inputs):
        with self.lock:
            self.threads.append(threading.current_thread().name)
            self.running += 1
            self.most_at_once = max(self.most_at_once, self.running)
        try:
            return super().__call__(inputs)
        finally:
            with self.lock:
                self.running -= 1


def test_cheap_calls_run_on_the_event_loop_and_dear_ones_in_the_pool():
    loop_thread = threading.current_thread().name  # asyncio.run runs the loop in this thread
    cheap = ThreadRecordingModel()
    run_batcher(cheap, [{"x": np.ones(2)}], cost=CHEAP)
    assert cheap.threads == [loop_thread]
    dear = ThreadRecordingModel()
    run_batcher(dear, [{"x": np.ones(2)}], cost=DEAR)
    assert dear.threads != [loop_thread]
    untimed = ThreadRecordingModel()
    run_batcher(untimed, [{"x": np.ones(2)}], cost=None)
    assert untimed.threads != [loop_thread]


def test_inline_batches_give_each_of_200_concurrent_callers_its_own_rows():
    model = ThreadRecordingModel()
    requests = [{"x": np.arange(i, i + (i % 4) + 1, dtype=np.float64)} for i in range(200)]
    results = run_batcher(model, requests, cost=CHEAP)
    for request, result in zip(requests, results, strict=True):
        np.testing.assert_array_equal(result["y"], request["x"] * 2)
    assert sum(model.calls) == sum(len(r["x"]) for r in requests)
    assert len(model.calls) < len(requests), "no call merged requests"


def test_a_request_larger_than_the_max_batch_runs_on_its_own():
    model = RecordingModel(delay=0.01)
    requests = [{"x": np.ones(3)}, {"x": np.arange(100, dtype=np.float64)}, {"x": np.ones(2)}]
    results = run_batcher(model, requests, max_batch_size=8)
    np.testing.assert_array_equal(results[1]["y"], np.arange(100) * 2)
    assert 100 in model.calls
    assert all(rows <= 8 for rows in model.calls if rows != 100)


def test_with_two_slots_large_requests_run_side_by_side_instead_of_merged():
    model = ThreadRecordingModel(delay=0.05)
    requests = [{"x": np.full(100, float(i))} for i in range(6)]
    results = run_batcher(model, requests, max_batch_size=1000, cost=BY_THE_ROW, slots=2)
    for i, result in enumerate(results):
        assert result["y"].tolist() == [2.0 * i] * 100
    assert model.calls == [100] * 6, "a batch that costs many times the call overhead was grown"
    assert model.most_at_once == 2


def test_a_batch_waits_for_a_request_whose_body_is_still_arriving():
    model = RecordingModel()

    async def main():
        with ThreadPoolExecutor(1) as pool:
            batcher = Batcher(ModelCalls(model, pool, CHEAP), max_batch_size=64, max_batch_latency_ms=60_000)
            await batcher.start()
            try:
                batcher.receiving = 1  # the transport is reading a second request's body
                first = asyncio.ensure_future(batcher.submit({"x": np.ones(1)}, 1))
                await asyncio.sleep(0.05)
                assert not first.done(), "the batch ran without the request it was told is arriving"
                batcher.receiving = 0
                second = await batcher.submit({"x": np.ones(2)}, 2)
                return await first, second
            finally:
                await batcher.stop()

    first, second = asyncio.run(main())
    assert first["y"].tolist() == [2.0] and second["y"].tolist() == [2.0, 2.0]
    assert model.calls == [3]


def test_a_bad_request_in_an_inline_batch_fails_alone():
    model = RecordingModel()
    requests = [{"x": np.array([float(i)])} for i in range(50)]
    requests[13] = {"x": np.array([-1.0])}
    results = run_batcher(model, requests, cost=CHEAP)
    assert isinstance(results[13], SignatureError)
    assert all(results[i]["y"].tolist() == [2.0 * i] for i in range(50) if i != 13)


def test_with_two_slots_small_requests_of_a_per_call_cost_model_merge_instead_of_spreading():
    model = ThreadRecordingModel(delay=0.02)
    requests = [{"x": np.full(1, float(i))} for i in range(40)]
    results = run_batcher(model, requests, cost=DEAR, slots=2)
    assert [r["y"].tolist() for r in results] == [[2.0 * i] for i in range(40)]
    assert model.most_at_once == 1, "a batch that could still grow took the second slot"
    assert len(model.calls) < 10


def test_with_two_slots_requests_over_the_max_batch_run_side_by_side():
    model = ThreadRecordingModel(delay=0.05)
    requests = [{"x": np.full(10, float(i))} for i in range(4)]
    results = run_batcher(model, requests, max_batch_size=8, cost=DEAR, slots=2)
    assert [r["y"].tolist() for r in results] == [[2.0 * i] * 10 for i in range(4)]
    assert model.calls == [10] * 4
    assert model.most_at_once == 2
