"""One worker's model server: the loaded model, how calls reach it, and its protocol handlers.

Handlers take and return bytes so that the framework routes (documented in
``/docs``) and the fast path (:mod:`quayside.serving.fastpath`) share them.
"""

from __future__ import annotations

import gc
import logging
from concurrent.futures import ThreadPoolExecutor

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
from quayside.serving.startup import StartupTimes

logger = logging.getLogger("quayside.serving")


class ModelServer:
    """One worker's state: the model, how calls reach it, health and metrics."""

    def __init__(self, runtime: ModelRuntime, options: ServeOptions, *, imported_at: float) -> None:
        self.runtime = runtime
        self.options = options
        self.imported_at = imported_at
        """When the app was imported (:func:`time.monotonic`): the end of the startup's import phase."""
        self.health = Health()
        self.metrics = ServerMetrics()
        self.batching = options.batching and runtime.batchable
        self.executor = ThreadPoolExecutor(
            max_workers=options.intra_op_threads, thread_name_prefix="quayside-model"
        )
        self.calls = ModelCalls(
            runtime.run, self.executor, runtime.call_cost, inline_below_us=options.inline_below_us
        )
        self.runner: Batcher | DirectRunner
        if self.batching:
            self.runner = Batcher(
                self.calls,
                max_batch_size=options.max_batch_size,
                max_batch_latency_ms=options.max_batch_latency_ms,
                slots=options.intra_op_threads,
                on_batch=self.metrics.observe_batch,
            )
        else:
            self.runner = DirectRunner(self.calls, on_batch=self.metrics.observe_batch)

    async def start(self) -> None:
        # Everything alive now (framework, model, runtime) lives as long as the process. Freezing
        # it keeps the garbage collector's full passes from walking it again and again: those
        # passes are what otherwise stalls every in-flight request every few seconds (the p99).
        gc.collect()
        gc.freeze()
        await self.runner.start()
        runtime = self.runtime
        self.metrics.model_load.set(runtime.load_seconds + runtime.warmup_seconds)
        startup = StartupTimes.until_now(
            imported_at=self.imported_at, load_s=runtime.load_seconds, warmup_s=runtime.warmup_seconds
        )
        self.metrics.observe_startup(startup)
        self.health.model_loaded = True
        self.health.watch_signals()
        self._log_ready(startup)

    def _log_ready(self, startup: StartupTimes) -> None:
        runtime, options = self.runtime, self.options
        model = f"'{runtime.name}'" + (f" version {runtime.version}" if runtime.version is not None else "")
        batching = f"batching up to {options.max_batch_size} rows" if self.batching else "batching off"
        logger.info(
            "ready: model %s on %s:%d in %s; %s, %s; %s",
            model,
            options.host,
            options.port,
            startup.describe(),
            runtime.platform,
            batching,
            self.calls.describe(),
        )

    async def stop(self) -> None:
        self.health.drain()
        await self.runner.stop()
        self.executor.shutdown(wait=True)

    def check_model_name(self, name: str) -> None:
        if name != self.runtime.name:
            raise NotFoundError(f"no model named '{name}' here; this server serves '{self.runtime.name}'")

    def check_model(self, name: str, version: str = "") -> None:
        """A request names this server's model, and (when it names one) its version; else 404."""
        self.check_model_name(name)
        served = self.runtime.version
        if version and version != served:
            serving = f"version {served}" if served is not None else "it without a version"
            raise NotFoundError(
                f"no version '{version}' of model '{name}' here; this server serves {serving}"
            )

    async def predict(self, request: v2.InferRequest) -> Arrays:
        """A parsed V2 request's outputs (those it asked for), through the batcher: for transports
        that decode tensors themselves (gRPC)."""
        outputs = await self.infer(request.inputs, request.rows)
        return v2.select_outputs(outputs, request.outputs, self.runtime.signature.outputs)

    async def infer(self, inputs: Arrays, rows: int) -> Arrays:
        self.health.in_flight += 1
        self.metrics.in_flight.inc()
        try:
            return await self.runner.submit(inputs, rows)
        finally:
            self.health.in_flight -= 1
            self.metrics.in_flight.dec()

    async def infer_v2(
        self, model_name: str, body: bytes, header_length: str | None = None
    ) -> bytes | Framed:
        """A V2 inference request body in, the response body out.

        ``header_length`` is the request's ``Inference-Header-Content-Length`` header, if it has
        one (the binary tensor data extension); the answer is :class:`Framed` when outputs were
        asked for in binary, else JSON bytes.
        """
        self.check_model_name(model_name)
        signature = self.runtime.signature
        parsed = v2.parse_infer_request(body, signature.inputs, header_length=header_length)
        outputs = await self.infer(parsed.inputs, parsed.rows)
        selected = v2.select_outputs(outputs, parsed.outputs, signature.outputs)
        return v2.render_infer_response(
            selected,
            signature.outputs,
            model_name=self.runtime.name,
            model_version=self.runtime.version,
            request_id=parsed.id,
            binary_outputs=parsed.binary_outputs(selected),
        )

    async def invocations(self, body: bytes, content_type: str) -> bytes:
        """An ``/invocations`` body (JSON or CSV) in, ``{"predictions": ...}`` out."""
        inputs, rows = invocations.parse_body(body, content_type, self.runtime.signature.inputs)
        return invocations.render_predictions(await self.infer(inputs, rows))
