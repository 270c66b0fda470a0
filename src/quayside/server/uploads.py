"""A request body as a readable stream, for a store that reads its source in a worker thread.

:meth:`quayside.artifacts.ArtifactStore.put` is plain blocking code (a file, or boto3), so it
runs in a thread; the body arrives on the event loop. :class:`RequestBody` hands the thread
the body a batch at a time, pulled from the loop on demand, so the whole body is never in
memory and a slow store slows the client down (TCP's flow control) instead of filling a buffer.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

from anyio import from_thread

BATCH = 1 << 20
"""How many bytes of the body one hop from the thread to the event loop gathers, at most about."""


class RequestBody:
    """``chunks`` (``request.stream()``) read from a worker thread that anyio started."""

    def __init__(self, chunks: AsyncIterator[bytes], batch: int = BATCH) -> None:
        self._chunks = chunks
        self._batch = batch
        self._buffer = memoryview(b"")
        self._ended = False

    def read(self, size: int = -1, /) -> bytes:
        while not self._buffer and not self._ended:
            self._buffer = memoryview(from_thread.run(self._gather))
        if size < 0 or size >= len(self._buffer):
            data, self._buffer = self._buffer, memoryview(b"")
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data.tobytes()

    async def _gather(self) -> bytes:
        parts: list[bytes] = []
        total = 0
        while total < self._batch:
            try:
                chunk = await anext(self._chunks)
            except StopAsyncIteration:
                self._ended = True
                break
            if chunk:
                parts.append(chunk)
                total += len(chunk)
        return parts[0] if len(parts) == 1 else b"".join(parts)
