"""What the closed-loop benchmarks share: latencies inside the measured window, and reading a
keep-alive HTTP/1.1 response off asyncio streams."""

from __future__ import annotations

import asyncio


class Latencies:
    """Closed-loop callers' latencies and errors, counted only inside the measured window."""

    def __init__(self, measure_from: float, measure_until: float) -> None:
        self.measure_from, self.measure_until = measure_from, measure_until
        self.latencies_ms: list[float] = []
        self.errors = 0

    def record(self, started: float, ended: float, ok: bool) -> None:
        if started < self.measure_from or ended > self.measure_until:
            return
        if ok:
            self.latencies_ms.append((ended - started) * 1000.0)
        else:
            self.errors += 1


async def read_status(reader: asyncio.StreamReader) -> int:
    """One HTTP/1.1 response off a keep-alive connection: its status (the body is read and dropped)."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    await reader.readexactly(length)
    return int(head[9:12])
