"""Adaptive batching: concurrent requests merged into one model call, split back by rows.

Requests queue while the model is busy; when it is free, everything queued
(up to ``max_batch_size`` rows) goes in one call. A lone request therefore
never waits for company, and under load batches grow by themselves. While the
last batch held several requests (the server is under concurrent load), a
batch that is not yet full also waits up to ``max_batch_latency_ms`` from its
oldest request's arrival for more to join.

The model runs in a thread: ONNX Runtime releases the GIL during ``run()``, so
the event loop goes on parsing the next requests meanwhile.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from dataclasses import dataclass, field

import numpy as np

from quayside.errors import QuaysideError
from quayside.packager.signature import Arrays

ModelCall = Callable[[Arrays], Arrays]
BatchObserver = Callable[[int, int], None]
"""Called with (rows, requests) for every model call."""


def merge_rows(parts: Sequence[Arrays]) -> Arrays:
    """Several requests' inputs as one batch, rows in request order."""
    if len(parts) == 1:
        return parts[0]
    return {name: np.concatenate([part[name] for part in parts]) for name in parts[0]}


def split_rows(outputs: Arrays, counts: Sequence[int]) -> list[Arrays]:
    """A batch's outputs cut back into each request's rows (``counts`` in request order)."""
    if len(counts) == 1:
        return [outputs]
    total = sum(counts)
    for name, array in outputs.items():
        if array.shape[0] != total:
            raise QuaysideError(
                f"the model returned {array.shape[0]} rows of '{name}' for a batch of {total} rows"
            )
    parts: list[Arrays] = []
    start = 0
    for count in counts:
        parts.append({name: array[start : start + count] for name, array in outputs.items()})
        start += count
    return parts


@dataclass
class _Pending:
    inputs: Arrays
    rows: int
    arrived: float
    future: asyncio.Future[Arrays] = field(repr=False)


class DirectRunner:
    """No batching: each request is its own model call, in the thread pool."""

    def __init__(self, run: ModelCall, executor: Executor, on_batch: BatchObserver | None = None) -> None:
        self._run = run
        self._executor = executor
        self._on_batch = on_batch

    async def submit(self, inputs: Arrays, rows: int) -> Arrays:
        if self._on_batch:
            self._on_batch(rows, 1)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, inputs)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class Batcher:
    """Merges concurrent requests into model calls of at most ``max_batch_size`` rows."""

    def __init__(
        self,
        run: ModelCall,
        executor: Executor,
        *,
        max_batch_size: int,
        max_batch_latency_ms: float,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._run = run
        self._executor = executor
        self._max_rows = max_batch_size
        self._max_wait = max_batch_latency_ms / 1000.0
        self._on_batch = on_batch
        self._queue: deque[_Pending] = deque()
        self._arrived = asyncio.Event()
        self._under_load = False
        self._worker: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Start the worker that forms and runs batches; call from the server's event loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="quayside-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued are cancelled."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, return_exceptions=True)
            self._worker = None
        while self._queue:
            self._queue.popleft().future.cancel()

    async def submit(self, inputs: Arrays, rows: int) -> Arrays:
        """Queue checked inputs of ``rows`` rows and wait for exactly their outputs."""
        if self._worker is None:
            raise QuaysideError("the batcher is not running")
        loop = asyncio.get_running_loop()
        pending = _Pending(inputs, rows, loop.time(), loop.create_future())
        self._queue.append(pending)
        self._arrived.set()
        return await pending.future

    async def _work(self) -> None:
        while True:
            batch = await self._collect()
            if batch:
                await self._run_batch(batch)

    async def _next(self, timeout: float | None) -> _Pending | None:
        while not self._queue:
            self._arrived.clear()
            if timeout is None:
                await self._arrived.wait()
                continue
            try:
                await asyncio.wait_for(self._arrived.wait(), timeout)
            except TimeoutError:
                return None
        return self._queue.popleft()

    async def _collect(self) -> list[_Pending]:
        first = await self._next(None)
        assert first is not None
        batch, rows = [first], first.rows
        loop = asyncio.get_running_loop()
        deadline = first.arrived + self._max_wait
        while rows < self._max_rows:
            if self._queue:
                item = self._queue.popleft()
            elif self._under_load and (remaining := deadline - loop.time()) > 0:
                item = await self._next(remaining)
                if item is None:
                    break
            else:
                break
            if rows + item.rows > self._max_rows:
                self._queue.appendleft(item)  # it opens the next batch
                break
            batch.append(item)
            rows += item.rows
        self._under_load = len(batch) > 1
        return [p for p in batch if not p.future.cancelled()]

    async def _call(self, inputs: Arrays, rows: int, requests: int) -> Arrays:
        if self._on_batch:
            self._on_batch(rows, requests)
        return await asyncio.get_running_loop().run_in_executor(self._executor, self._run, inputs)

    async def _run_batch(self, batch: list[_Pending]) -> None:
        counts = [p.rows for p in batch]
        try:
            outputs = await self._call(merge_rows([p.inputs for p in batch]), sum(counts), len(batch))
            parts = split_rows(outputs, counts)
        except QuaysideError as e:
            if len(batch) == 1:
                _resolve(batch[0], error=e)
            else:
                # One bad request must not fail its neighbours: run each alone to find it.
                for pending in batch:
                    await self._run_batch([pending])
            return
        except Exception as e:  # a bug in a model or runtime: every caller sees it, none hangs
            for pending in batch:
                _resolve(pending, error=e)
            return
        for pending, part in zip(batch, parts, strict=True):
            _resolve(pending, result=part)


def _resolve(pending: _Pending, *, result: Arrays | None = None, error: BaseException | None = None) -> None:
    if pending.future.done():
        return  # the caller went away
    if error is not None:
        pending.future.set_exception(error)
    else:
        assert result is not None
        pending.future.set_result(result)
