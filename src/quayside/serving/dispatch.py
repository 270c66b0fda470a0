"""Where a model call runs: on the event loop when that is cheaper than the hop to a thread.

A call handed to a worker thread and back costs a wake-up on each side: about
95 µs on the 2-core VM the benchmarks run on, far more than a one-row call of a
small tree ensemble (under 10 µs). So the server measures the model's cost per
call and per row when it loads, and runs a call inline when its predicted cost
is under ``inline_below_us`` (by default 100 µs, about one round trip). Anything
slower runs in the thread pool, where ONNX Runtime releases the GIL and the loop
goes on reading the next requests meanwhile.

The threshold is a setting, not measured at start: a round trip timed on a busy
machine varies fourfold from one start to the next (21-95 µs here), and where a
call runs should not change with the noise of the minute the server started.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass

from quayside.packager.signature import Arrays

ModelCall = Callable[[Arrays], Arrays]

DEFAULT_INLINE_BELOW_US = 100.0
_SAMPLES = 15
_BUDGET_S = 0.25
"""Most time the start-up measurement may take; a slow model is known to be slow after one call."""


@dataclass(frozen=True)
class CallCost:
    """What one model call costs, in microseconds: ``fixed_us + per_row_us * rows``."""

    fixed_us: float
    per_row_us: float

    def predict_us(self, rows: int) -> float:
        return self.fixed_us + self.per_row_us * rows


def _fastest_us(call: Callable[[], object], deadline: float) -> float:
    # The fastest of several calls: what the model costs, without the other processes' share of the CPU.
    fastest = float("inf")
    for _ in range(_SAMPLES):
        started = time.perf_counter()
        call()
        fastest = min(fastest, (time.perf_counter() - started) * 1e6)
        if started > deadline:
            break
    return fastest


def measure_call_cost(
    run: ModelCall, small: Arrays, small_rows: int, large: Arrays, large_rows: int
) -> CallCost:
    """Time ``run`` on two inputs of different row counts and fit a line through them."""
    deadline = time.perf_counter() + _BUDGET_S
    small_us = _fastest_us(lambda: run(small), deadline)
    if large_rows <= small_rows:
        return CallCost(fixed_us=small_us, per_row_us=0.0)
    large_us = _fastest_us(lambda: run(large), deadline)
    per_row = max(0.0, (large_us - small_us) / (large_rows - small_rows))
    return CallCost(fixed_us=max(0.0, small_us - per_row * small_rows), per_row_us=per_row)


class ModelCalls:
    """Runs model calls inline or in the thread pool, whichever the measured cost says is cheaper."""

    def __init__(
        self,
        run: ModelCall,
        executor: Executor,
        cost: CallCost | None = None,
        *,
        inline_below_us: float = DEFAULT_INLINE_BELOW_US,
    ) -> None:
        self.run = run
        self.executor = executor
        self.cost = cost
        """None when the model could not be timed (no input example): every call goes to the pool."""
        self.inline_below_us = inline_below_us

    def inline(self, rows: int) -> bool:
        """Whether a call of ``rows`` rows is cheaper on the loop than through a thread."""
        return self.cost is not None and self.cost.predict_us(rows) < self.inline_below_us

    async def __call__(self, inputs: Arrays, rows: int) -> Arrays:
        if self.inline(rows):
            return self.run(inputs)
        return await self.in_pool(inputs)

    async def in_pool(self, inputs: Arrays) -> Arrays:
        """Run the call in the thread pool, whatever it costs."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, self.run, inputs)

    def describe(self) -> str:
        """Part of the start-up log line: the model's cost and which calls run inline."""
        if self.cost is None:
            return "not timed (no input example): every call in the thread pool"
        cost, limit_us = self.cost, self.inline_below_us
        if cost.fixed_us >= limit_us:
            where = "every call in the thread pool"
        elif cost.per_row_us == 0:
            where = "every call inline"
        else:
            rows = int((limit_us - cost.fixed_us) / cost.per_row_us)
            where = f"calls up to {rows} rows inline, larger ones in the thread pool"
        return f"a call takes {cost.fixed_us:.0f} µs + {cost.per_row_us:.2f} µs/row: {where}"
