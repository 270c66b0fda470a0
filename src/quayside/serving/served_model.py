"""One model a worker serves: its runtime session, how calls reach it, and its protocol handlers.

A worker (:class:`~quayside.serving.model_server.ModelServer`) holds one of these per model it
serves; they share the worker's executor, health and metrics registry. Handlers take and return
bytes so that the framework routes and the fast path share them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import Executor

from quayside.errors import NotFoundError
from quayside.packager.signature import Arrays
from quayside.serving.batching import Batcher, DirectRunner
from quayside.serving.dispatch import ModelCalls
from quayside.serving.health import Health
from quayside.serving.metrics import ServerMetrics
from quayside.serving.options import ServeOptions
from quayside.serving.protocols import invocations, v2
from quayside.serving.protocols.binary import Framed
from quayside.serving.runtime import ModelRuntime

MODEL_NAME_HEADER = "quayside-model-name"
MODEL_VERSION_HEADER = "quayside-model-version"
"""Response headers naming the model and version that answered (which one did, across an alias move)."""


class ServedModel:
    """A loaded model and its batcher (or direct runner), answering V2 and ``/invocations`` bodies."""

    def __init__(
        self,
        runtime: ModelRuntime,
        options: ServeOptions,
        *,
        executor: Executor,
        health: Health,
        metrics: ServerMetrics,
        source: str = "",
    ) -> None:
        self.runtime = runtime
        self.name = runtime.name
        self.version = runtime.version
        self.source = source
        """The path or URI the model was loaded from (the repository index and reloads show it)."""
        self.health = health
        self.labels = (runtime.name, runtime.version or "")
        """The ``model`` and ``version`` labels of this model's metrics."""
        self.in_flight = metrics.in_flight.labels(*self.labels)
        self.batching = options.batching and runtime.batchable
        self.calls = ModelCalls(
            runtime.run, executor, runtime.call_cost, inline_below_us=options.inline_below_us
        )
        on_batch = metrics.batch_observer(*self.labels)
        self.runner: Batcher | DirectRunner
        if self.batching:
            self.runner = Batcher(
                self.calls,
                max_batch_size=options.max_batch_size,
                max_batch_latency_ms=options.max_batch_latency_ms,
                slots=options.intra_op_threads,
                on_batch=on_batch,
            )
        else:
            self.runner = DirectRunner(self.calls, on_batch=on_batch)
        self.infer_path = f"/v2/models/{runtime.name}/infer"
        self.version_infer_path = (
            f"/v2/models/{runtime.name}/versions/{runtime.version}/infer"
            if runtime.version is not None
            else None
        )
        """The versioned route of this model's own version; None without a version."""
        self.header_pairs = [(MODEL_NAME_HEADER.encode(), runtime.name.encode())]
        if runtime.version is not None:
            self.header_pairs.append((MODEL_VERSION_HEADER.encode(), runtime.version.encode()))
        """The response headers naming this model and its version, as ASGI header pairs."""
        self.active = 0
        """Inference requests inside this model now (an idle model has none)."""
        self.last_used = time.monotonic()
        """When an inference request last reached this model: what the memory budget's eviction orders by."""
        self._successor: Callable[[], Awaitable[ServedModel]] | None = None
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def headers(self) -> dict[str, str]:
        """The response headers naming this model and its version."""
        return {key.decode(): value.decode() for key, value in self.header_pairs}

    @property
    def memory_bytes(self) -> int:
        """What this model counts against a memory budget (:attr:`ModelRuntime.memory_bytes`)."""
        return self.runtime.memory_bytes

    async def start(self) -> None:
        await self.runner.start()

    async def stop(self) -> None:
        await self.runner.stop()

    async def retire(self, successor: Callable[[], Awaitable[ServedModel]], grace_s: float) -> None:
        """Stop taking requests, let those inside finish (for at most ``grace_s``), then stop.

        A request that found this model before it was retired but reaches it only now (it was
        still reading its body) goes to ``successor()``: the model now serving the name, loaded
        again if it has to be. So a swap or an unload between a lookup and a call fails nobody.
        """
        self._successor = successor
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._idle.wait(), timeout=grace_s)
        await self.stop()

    @property
    def retired(self) -> bool:
        """Whether this model was replaced, evicted or unloaded: its callers go to :meth:`answering`.
        Checked, not awaited, on the request path, so that a serving model costs no coroutine."""
        return self._successor is not None

    async def answering(self) -> ServedModel:
        """The one now serving this (retired) model's name, loaded again if it has to be. Check
        :attr:`retired` just before a handler: nothing awaits between the check and the handler's
        call, so nothing can retire the model between the two."""
        model = self
        while model._successor is not None:
            model = await model._successor()
        return model

    def check_version(self, version: str) -> None:
        """A request naming a version (any but empty) names this model's; else 404."""
        served = self.version
        if version and version != served:
            serving = f"version {served}" if served is not None else "it without a version"
            raise NotFoundError(
                f"no version '{version}' of model '{self.name}' here; this server serves {serving}"
            )

    async def predict(self, request: v2.InferRequest) -> Arrays:
        """A parsed V2 request's outputs (those it asked for), through the batcher: for transports
        that decode tensors themselves (gRPC)."""
        outputs = await self.infer(request.inputs, request.rows)
        return v2.select_outputs(outputs, request.outputs, self.runtime.signature.outputs)

    async def infer(self, inputs: Arrays, rows: int) -> Arrays:
        self.health.in_flight += 1
        self.in_flight.inc()
        self.active += 1
        self.last_used = time.monotonic()
        self._idle.clear()
        try:
            return await self.runner.submit(inputs, rows)
        finally:
            self.health.in_flight -= 1
            self.in_flight.dec()
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def infer_v2(self, body: bytes, header_length: str | None = None) -> bytes | Framed:
        """A V2 inference request body in, the response body out.

        ``header_length`` is the request's ``Inference-Header-Content-Length`` header, if it has
        one (the binary tensor data extension); the answer is :class:`Framed` when outputs were
        asked for in binary, else JSON bytes.
        """
        signature = self.runtime.signature
        parsed = v2.parse_infer_request(body, signature.inputs, header_length=header_length)
        outputs = await self.infer(parsed.inputs, parsed.rows)
        selected = v2.select_outputs(outputs, parsed.outputs, signature.outputs)
        return v2.render_infer_response(
            selected,
            signature.outputs,
            model_name=self.name,
            model_version=self.version,
            request_id=parsed.id,
            binary_outputs=parsed.binary_outputs(selected),
        )

    async def invocations(self, body: bytes, content_type: str) -> bytes:
        """An ``/invocations`` body (JSON or CSV) in, ``{"predictions": ...}`` out."""
        inputs, rows = invocations.parse_body(body, content_type, self.runtime.signature.inputs)
        return invocations.render_predictions(await self.infer(inputs, rows))
