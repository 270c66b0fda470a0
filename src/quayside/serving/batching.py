"""Adaptive batching: concurrent requests merged into one model call, split back by rows.

A batch never waits in vain. A request that finds the model free and nobody to
merge with runs at once, in its own task, as if there were no batcher. Requests
queue only while every model slot is busy, or while the last batches found
company: then the batcher lets the event loop take one more pass (the requests
it has already accepted reach the queue) and waits, up to
``max_batch_latency_ms``, only for requests whose body is still arriving, which
are certain to come. It never waits for requests that may or may not be sent:
with closed-loop clients every request that can join is already queued. When
batches stop finding company the batcher goes back to running requests alone,
and every ``PROBE_EVERY`` requests it queues one to see whether company came.

How a call runs (inline on the loop or in the thread pool) is
:class:`~quayside.serving.dispatch.ModelCalls`' choice, from the model's
measured cost. A batch that cannot usefully grow (full, or costing several
times the per-call overhead) goes to the thread pool even while another call
runs: two 100-row requests then run side by side instead of one after the
other.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from quayside.errors import QuaysideError
from quayside.packager.signature import Arrays
from quayside.serving.dispatch import ModelCalls

BatchObserver = Callable[[int, int], None]
"""Called with (rows, requests) for every model call."""

PROBE_EVERY = 128
"""While requests run alone, one in this many is queued to find out whether others arrive with it."""

_WORTH_SPLITTING = 4.0
"""A batch costing this many times the per-call overhead gains little from growing: use a free slot instead."""


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
    future: asyncio.Future[Arrays] = field(repr=False)


class DirectRunner:
    """No batching: each request is its own model call, inline or in the thread pool."""

    def __init__(self, calls: ModelCalls, on_batch: BatchObserver | None = None) -> None:
        self._calls = calls
        self._on_batch = on_batch
        self.receiving = 0
        """Requests whose body is still arriving (counted by the transport; unused without batching)."""

    async def submit(self, inputs: Arrays, rows: int) -> Arrays:
        if self._on_batch:
            self._on_batch(rows, 1)
        return await self._calls(inputs, rows)

    async def start(self) -> None:
        return None

    async def stop(self) -> None:
        return None


class Batcher:
    """Merges concurrent requests into model calls of at most ``max_batch_size`` rows.

    ``slots`` is how many threads the pool has. With no call running, any batch starts; while
    one runs, only a batch that cannot usefully grow (it is full, or already costs many times
    the per-call overhead) goes to the pool, so small requests of a model whose cost is mostly
    per call merge into the next batch while large ones run side by side, as without batching.
    A request of more than ``max_batch_size`` rows is served as a call of its own.
    """

    def __init__(
        self,
        calls: ModelCalls,
        *,
        max_batch_size: int,
        max_batch_latency_ms: float,
        slots: int = 1,
        on_batch: BatchObserver | None = None,
    ) -> None:
        self._calls = calls
        self._max_rows = max_batch_size
        self._max_wait = max_batch_latency_ms / 1000.0
        self._on_batch = on_batch
        self._parallel = slots > 1
        self._busy = 0
        """Model calls running (or waiting for a thread of the pool)."""
        cost = calls.cost
        self._worth_splitting_us = (
            _WORTH_SPLITTING * (cost.fixed_us + calls.inline_below_us) if cost is not None else None
        )
        self._queue: deque[_Pending] = deque()
        self._wake = asyncio.Event()
        self._merging = False
        self._alone_since_probe = 0
        self._worker: asyncio.Task[None] | None = None
        self._running: set[asyncio.Task[None]] = set()
        self.receiving = 0
        """Requests whose body is still arriving; the transport counts them so a batch can wait for them."""

    async def start(self) -> None:
        """Start the worker that forms batches while the model is idle; call from the server's loop."""
        if self._worker is None:
            self._worker = asyncio.get_running_loop().create_task(self._work(), name="quayside-batcher")

    async def stop(self) -> None:
        """Stop the worker; requests still queued are cancelled."""
        if self._worker is not None:
            self._worker.cancel()
            await asyncio.gather(self._worker, *self._running, return_exceptions=True)
            self._worker = None
        while self._queue:
            self._queue.popleft().future.cancel()

    async def submit(self, inputs: Arrays, rows: int) -> Arrays:
        """Run checked inputs of ``rows`` rows, alone or in a batch, and return exactly their outputs."""
        if self._worker is None:
            raise QuaysideError("the batcher is not running")
        if not self._queue and not self._merging and not self.receiving and self._can_start(rows):
            self._alone_since_probe += 1
            if self._alone_since_probe < PROBE_EVERY:
                return await self._run_alone(inputs, rows)
            self._alone_since_probe = 0
        future: asyncio.Future[Arrays] = asyncio.get_running_loop().create_future()
        self._queue.append(_Pending(inputs, rows, future))
        self._wake.set()
        return await future

    def _can_start(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows may start now (see the class docstring)."""
        return self._busy == 0 or self._cannot_usefully_grow(rows)

    def _cannot_usefully_grow(self, rows: int) -> bool:
        """A batch of ``rows`` is full, or already costs many times what merging more would save."""
        if rows >= self._max_rows:
            return True
        cost, limit = self._calls.cost, self._worth_splitting_us
        return cost is not None and limit is not None and cost.predict_us(rows) >= limit

    async def _run_alone(self, inputs: Arrays, rows: int) -> Arrays:
        self._busy += 1
        try:
            if self._on_batch:
                self._on_batch(rows, 1)
            return await self._calls(inputs, rows)
        finally:
            self._call_finished()

    def _call_finished(self) -> None:
        self._busy -= 1
        # What queued while calls were running starts now: it had all that time to gather.
        while self._queue and self._start_next():
            pass

    async def _work(self) -> None:
        """Batches formed while no call is running: after one loop pass, and bodies still arriving."""
        loop = asyncio.get_running_loop()
        while True:
            while not (self._queue and self._busy == 0):
                self._wake.clear()
                await self._wake.wait()
            await asyncio.sleep(0)  # one pass of the loop: requests it has already accepted join the queue
            await self._wait_for_bodies(loop.time() + self._max_wait)
            while self._queue and self._start_next():
                pass

    def _start_next(self) -> bool:
        """Take the next batch and start it, if a slot may take it; False when none may."""
        batch = self._take_batch()
        if not batch:
            return False
        rows = sum(p.rows for p in batch)
        if not self._can_start(rows):
            self._queue.extendleft(reversed(batch))
            return False
        self._merging = len(batch) > 1
        if self._calls.inline(rows):
            self._run_inline(batch)
            return True
        self._busy += 1
        task = asyncio.get_running_loop().create_task(self._run_batch_in_pool(batch))
        self._running.add(task)
        task.add_done_callback(self._running.discard)
        return True

    def _run_inline(self, batch: list[_Pending]) -> None:
        self._observe(batch)
        try:
            outputs, error = self._calls.run(merge_rows([p.inputs for p in batch])), None
        except Exception as e:
            outputs, error = None, e
        for pending in self._deliver(batch, outputs, error):
            self._run_inline([pending])

    async def _wait_for_bodies(self, deadline: float) -> None:
        """Wait (until ``deadline``) while requests are still being received: they are sure to join."""
        loop = asyncio.get_running_loop()
        while self.receiving and self._queued_rows() < self._max_rows:
            remaining = deadline - loop.time()
            if remaining <= 0:
                return
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), remaining)
            except TimeoutError:
                return

    def _queued_rows(self) -> int:
        return sum(p.rows for p in self._queue)

    def _take_batch(self) -> list[_Pending]:
        """The queue's head, then more requests in order while they fit and are worth merging."""
        batch: list[_Pending] = []
        rows = 0
        while self._queue:
            head = self._queue[0]
            if head.future.cancelled():  # the caller went away
                self._queue.popleft()
                continue
            if batch and rows + head.rows > self._max_rows:
                break
            if batch and self._parallel and self._cannot_usefully_grow(rows):
                break
            batch.append(self._queue.popleft())
            rows += head.rows
        return batch

    async def _run_batch_in_pool(self, batch: list[_Pending]) -> None:
        try:
            await self._run_in_pool(batch)
        finally:
            self._call_finished()

    async def _run_in_pool(self, batch: list[_Pending]) -> None:
        self._observe(batch)
        try:
            outputs, error = await self._calls.in_pool(merge_rows([p.inputs for p in batch])), None
        except Exception as e:
            outputs, error = None, e
        for pending in self._deliver(batch, outputs, error):
            await self._run_in_pool([pending])

    def _observe(self, batch: list[_Pending]) -> None:
        if self._on_batch:
            self._on_batch(sum(p.rows for p in batch), len(batch))

    @staticmethod
    def _deliver(batch: list[_Pending], outputs: Arrays | None, error: Exception | None) -> list[_Pending]:
        """Give each caller its rows or the error; returns the requests to run again, each alone."""
        if error is None:
            assert outputs is not None
            try:
                parts = split_rows(outputs, [p.rows for p in batch])
            except QuaysideError as e:
                error = e
            else:
                for pending, part in zip(batch, parts, strict=True):
                    _resolve(pending, result=part)
                return []
        if isinstance(error, QuaysideError) and len(batch) > 1:
            return batch  # one bad request must not fail its neighbours: run each alone to find it
        for pending in batch:  # a bad request, or a bug in a model or runtime: every caller sees it
            _resolve(pending, error=error)
        return []


def _resolve(pending: _Pending, *, result: Arrays | None = None, error: BaseException | None = None) -> None:
    if pending.future.done():
        return  # the caller went away
    if error is not None:
        pending.future.set_exception(error)
    else:
        assert result is not None
        pending.future.set_result(result)
