"""Swapping a model under load, in process: requests inside the old one finish on it, latecomers move on.

A slow model (0.5 s a call) keeps requests queued in the old version's batcher while a reload
puts a new version in its place, and a caller that looked the model up before the swap calls it
only after: nobody gets an error, the queued requests are answered by the old version, the
latecomer by the new one, and the reload returns only once the old one has drained.
"""

from __future__ import annotations

import asyncio
import gc
import threading
import time
from pathlib import Path

import numpy as np

from quayside.serving.model_server import ModelServer
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime


def run_in_thread(coroutine) -> object:
    """Run ``coroutine`` on a loop of its own in another thread (the server then installs no
    signal handlers in the test process)."""
    result: dict[str, object] = {}

    def target() -> None:
        try:
            result["value"] = asyncio.run(coroutine)
        except BaseException as e:
            result["error"] = e

    thread = threading.Thread(target=target)
    thread.start()
    thread.join(120)
    gc.unfreeze()  # the server froze the test process's objects at start
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["value"]


def test_a_reload_drains_the_old_version_and_forwards_latecomers(slow_package: Path):
    options = ServeOptions(trust=True, grace_period_s=30)
    old = load_runtime(slow_package, trust=True, name="slow", version="1")
    new = load_runtime(slow_package, trust=True, name="slow", version="2")
    rows = np.arange(6, dtype=np.float64).reshape(2, 3)

    async def scenario() -> dict[str, object]:
        server = ModelServer(
            [old], options, imported_at=time.monotonic(), loader=lambda s, n: new, sources=["v1"]
        )
        await server.start()
        try:
            before = await server.model("slow")
            queued = [asyncio.create_task(before.infer({"input": rows}, 2)) for _ in range(6)]
            await asyncio.sleep(0.05)  # they are in the old batcher now, most of them waiting
            reload = asyncio.create_task(server.reload("slow"))
            while server.models["slow"] is before:
                await asyncio.sleep(0.01)
            assert before.retired
            latecomer = await before.answering()  # looked up before the swap, calling after it
            late = await latecomer.infer({"input": rows}, 2)
            answers = await asyncio.gather(*queued)
            await reload
            reload_done_after_queue = all(task.done() for task in queued)
            return {
                "answers": answers,
                "late": late,
                "latecomer_version": latecomer.version,
                "serving": server.models["slow"].version,
                "drained": reload_done_after_queue,
                "old_active": before.active,
            }
        finally:
            await server.stop()

    outcome = run_in_thread(scenario())
    expected = rows.sum(axis=1)
    assert len(outcome["answers"]) == 6
    for answer in outcome["answers"]:
        (values,) = answer.values()
        np.testing.assert_allclose(values, expected)
    (late,) = outcome["late"].values()
    np.testing.assert_allclose(late, expected)
    assert outcome["latecomer_version"] == "2"
    assert outcome["serving"] == "2"
    assert outcome["drained"] and outcome["old_active"] == 0


def test_a_latecomer_to_an_evicted_model_loads_it_again(slow_package: Path):
    runtimes = [load_runtime(slow_package, trust=True, name=name) for name in ("a", "b")]
    budget_mb = runtimes[0].memory_bytes * 1.5 / 1e6  # room for one of the two
    options = ServeOptions(trust=True, memory_budget_mb=budget_mb)
    rows = np.arange(3, dtype=np.float64).reshape(1, 3)

    async def scenario() -> tuple[list[str], list[str], float]:
        loads = {"a": runtimes[0], "b": runtimes[1]}
        server = ModelServer(
            runtimes, options, imported_at=time.monotonic(), loader=lambda s, n: loads[n], sources=["a", "b"]
        )
        await server.start()
        try:
            evicted_first = sorted(server.evicted)
            held = await server.model("b")
            await server.model("a")  # evicts b, which `held` still points at
            assert held.retired
            answer = await (await held.answering()).infer({"input": rows}, 1)
            (values,) = answer.values()
            return evicted_first, sorted(server.evicted), float(values[0])
        finally:
            await server.stop()

    evicted_first, evicted_after, value = run_in_thread(scenario())
    assert evicted_first == ["a"]
    assert evicted_after == ["a"]  # b came back for the latecomer, a went out again
    assert value == 3.0
