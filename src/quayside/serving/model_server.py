"""One worker's model server: the models it serves, how calls reach them, health and metrics.

Each model is a :class:`~quayside.serving.served_model.ServedModel` (its runtime session and
batcher); the worker keeps one health, one metrics registry and one executor for them all.
Handlers take and return bytes so that the framework routes (documented in ``/docs``) and the
fast path (:mod:`quayside.serving.fastpath`) share them. Models can be loaded and unloaded while
the server runs (the model repository extension), through the injected ``loader``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from quayside.errors import InvalidStateError, NotFoundError, PermissionDeniedError, UsageError
from quayside.packager.signature import Arrays
from quayside.serving.batching import Batcher, DirectRunner
from quayside.serving.health import Health
from quayside.serving.metrics import ServerMetrics
from quayside.serving.options import ServeOptions
from quayside.serving.protocols import v2
from quayside.serving.protocols.binary import Framed
from quayside.serving.runtime import ModelRuntime
from quayside.serving.served_model import ServedModel
from quayside.serving.startup import StartupTimes

logger = logging.getLogger("quayside.serving")

ModelLoader = Callable[[str, str], ModelRuntime]
"""Loads and warms the package at a path or model URI under a name (blocking: run in a thread).
Built by the launcher (:mod:`quayside.serving.server`), which knows the options and how to
resolve a URI; serving itself resolves none."""


@dataclass(frozen=True)
class IndexEntry:
    """One model in the repository index: its name, version and state (Triton's words)."""

    name: str
    version: str
    state: str
    """READY, LOADING, or UNAVAILABLE (unloaded)."""
    reason: str = ""


def _no_loader(source: str, name: str) -> ModelRuntime:
    raise InvalidStateError("this server was started without a model loader; it cannot load models")


class ModelServer:
    """One worker's state: the models, how calls reach them, health and metrics."""

    def __init__(
        self,
        runtimes: ModelRuntime | Sequence[ModelRuntime],
        options: ServeOptions,
        *,
        imported_at: float,
        loader: ModelLoader | None = None,
        sources: Sequence[str] = (),
    ) -> None:
        runtimes = [runtimes] if isinstance(runtimes, ModelRuntime) else list(runtimes)
        if not runtimes:
            raise UsageError("a model server needs at least one model to serve")
        self.options = options
        self.imported_at = imported_at
        """When the app was imported (:func:`time.monotonic`): the end of the startup's import phase."""
        self.health = Health()
        self.metrics = ServerMetrics()
        self.executor = ThreadPoolExecutor(
            max_workers=options.intra_op_threads, thread_name_prefix="quayside-model"
        )
        self.loader = loader or _no_loader
        self.models: dict[str, ServedModel] = {}
        self.infer_paths: dict[str, ServedModel] = {}
        """Each served model's V2 infer routes (plain and of its version): the fast path's table."""
        self.unloaded: dict[str, str] = {}
        """Models unloaded through the repository, by name: where each was loaded from."""
        self.loading: dict[str, asyncio.Future[ServedModel]] = {}
        self._lock = asyncio.Lock()
        for runtime, source in zip(runtimes, [*sources, *[""] * len(runtimes)], strict=False):
            if runtime.name in self.models:
                raise UsageError(f"two models are named '{runtime.name}'; rename one with NAME=MODEL")
            self._add(self._served(runtime, source))
        self._first_name = runtimes[0].name

    @property
    def first(self) -> ServedModel:
        """The first model given, as loaded now (a reload replaces it): the one ``/docs`` describes;
        while it is unloaded, the first one served."""
        return self.models.get(self._first_name) or next(iter(self.models.values()))

    @property
    def runtime(self) -> ModelRuntime:
        """The first model's runtime (the only one, on a server of one model)."""
        return self.first.runtime

    @property
    def ready(self) -> bool:
        """Ready when the process is, and every model that should be loaded is (none loading)."""
        return self.health.ready and not self.loading

    def _served(self, runtime: ModelRuntime, source: str) -> ServedModel:
        return ServedModel(
            runtime,
            self.options,
            executor=self.executor,
            health=self.health,
            metrics=self.metrics,
            source=source,
        )

    def _add(self, model: ServedModel) -> None:
        self.models[model.name] = model
        self.infer_paths[model.infer_path] = model
        if model.version_infer_path is not None:
            self.infer_paths[model.version_infer_path] = model

    def _remove(self, model: ServedModel) -> None:
        del self.models[model.name]
        self.infer_paths.pop(model.infer_path, None)
        if model.version_infer_path is not None:
            self.infer_paths.pop(model.version_infer_path, None)

    async def start(self) -> None:
        # Everything alive now (framework, model, runtime) lives as long as the process. Freezing
        # it keeps the garbage collector's full passes from walking it again and again: those
        # passes are what otherwise stalls every in-flight request every few seconds (the p99).
        gc.collect()
        gc.freeze()
        for model in self.models.values():
            await model.start()
            runtime = model.runtime
            self.metrics.model_load.labels(*model.labels).set(runtime.load_seconds + runtime.warmup_seconds)
            startup = StartupTimes.until_now(
                imported_at=self.imported_at, load_s=runtime.load_seconds, warmup_s=runtime.warmup_seconds
            )
            self.metrics.observe_startup(startup, *model.labels)
            self._log_ready(model, startup)
        self.health.model_loaded = True
        self.health.watch_signals()

    def _log_ready(self, model: ServedModel, startup: StartupTimes) -> None:
        runtime, options = model.runtime, self.options
        name = f"'{runtime.name}'" + (f" version {runtime.version}" if runtime.version is not None else "")
        batching = f"batching up to {options.max_batch_size} rows" if model.batching else "batching off"
        logger.info(
            "ready: model %s on %s:%d in %s; %s, %s; %s",
            name,
            options.host,
            options.port,
            startup.describe(),
            runtime.platform,
            batching,
            model.calls.describe(),
        )

    async def stop(self) -> None:
        self.health.drain()
        for model in list(self.models.values()):
            await model.stop()
        self.executor.shutdown(wait=True)

    # --- finding the model a request names -------------------------------------------------

    def model(self, name: str, version: str = "") -> ServedModel:
        """The served model a request names (and, when it names one, its version); else 404."""
        model = self.models.get(name)
        if model is None:
            raise NotFoundError(self._no_model(name))
        model.check_version(version)
        return model

    def _no_model(self, name: str) -> str:
        if name in self.unloaded:
            return f"model '{name}' is unloaded; load it again (POST /v2/repository/models/{name}/load)"
        if name in self.loading:
            return f"model '{name}' is still loading; retry"
        served = ", ".join(f"'{n}'" for n in self.models)
        return f"no model named '{name}' here; this server serves {served}"

    def check_model(self, name: str, version: str = "") -> None:
        """A request names a served model, and (when it names one) its version; else 404."""
        self.model(name, version)

    def check_model_name(self, name: str) -> None:
        self.model(name)

    def invocations_model(self, requested: str | None) -> ServedModel:
        """The model ``/invocations`` answers for: the only one served, or the one ``?model=`` names."""
        if requested:
            return self.model(requested)
        if len(self.models) == 1:
            return next(iter(self.models.values()))
        choices = ", ".join(f"'{n}'" for n in self.models) or "none (every model is unloaded)"
        raise UsageError(
            f"this server serves {len(self.models)} models: name one with /invocations?model=NAME "
            f"(one of {choices})"
        )

    # --- the handlers the transports share --------------------------------------------------

    @property
    def runner(self) -> Batcher | DirectRunner:
        """The first model's runner (tests and the single-model fast path read it)."""
        return self.first.runner

    async def predict(self, request: v2.InferRequest, model: ServedModel | None = None) -> Arrays:
        """A parsed V2 request's outputs through ``model``'s batcher (the first model by default)."""
        return await (model or self.first).predict(request)

    async def infer_v2(
        self, model_name: str, body: bytes, header_length: str | None = None, *, model_version: str = ""
    ) -> bytes | Framed:
        """A V2 inference request body for the model named (and version, if named) in, the response out."""
        return await self.model(model_name, model_version).infer_v2(body, header_length)

    async def invocations(self, body: bytes, content_type: str, model: str | None = None) -> bytes:
        """An ``/invocations`` body (JSON or CSV) in, ``{"predictions": ...}`` out."""
        return await self.invocations_model(model).invocations(body, content_type)

    # --- the model repository extension ----------------------------------------------------

    def index(self) -> list[IndexEntry]:
        """Every model this server serves, is loading, or unloaded, sorted by name."""
        entries = [IndexEntry(m.name, m.version or "", "READY") for m in self.models.values()]
        entries += [IndexEntry(name, "", "LOADING", "being loaded") for name in self.loading]
        entries += [
            IndexEntry(name, "", "UNAVAILABLE", "unloaded")
            for name in self.unloaded
            if name not in self.models and name not in self.loading
        ]
        return sorted(entries, key=lambda entry: entry.name)

    async def load(self, name: str, source: str | None = None) -> ServedModel:
        """Load (or reload) ``name`` from ``source`` (a path or URI; by default where it was loaded
        from before), warm it, and serve it; a model already loaded from there is left as it is."""
        pending = self.loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        current = self.models.get(name)
        source = source or (current.source if current else "") or self.unloaded.get(name, "")
        if not source:
            raise UsageError(
                f"no model '{name}' to load: give its path or URI as "
                '{"parameters": {"uri": "..."}} in the body'
            )
        if current is not None and current.source == source:
            return current
        self._check_model_control("load")
        future: asyncio.Future[ServedModel] = asyncio.get_running_loop().create_future()
        self.loading[name] = future
        try:
            model = await self._load(name, source, current)
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: a load nobody else awaited logs no warning
            raise
        finally:
            del self.loading[name]
        future.set_result(model)
        return model

    def _check_model_control(self, action: str) -> None:
        if not self.options.model_control:
            raise PermissionDeniedError(
                f"this server does not {action} models on request; start it with --model-control to allow it"
            )

    async def _load(self, name: str, source: str, current: ServedModel | None) -> ServedModel:
        runtime = await asyncio.to_thread(self.loader, source, name)
        model = self._served(runtime, source)
        await model.start()
        if current is not None:
            self._remove(current)
            await current.stop()
        self._add(model)
        self.unloaded.pop(name, None)
        self.metrics.model_loads.labels(*model.labels).inc()
        self.metrics.model_load.labels(*model.labels).set(runtime.load_seconds + runtime.warmup_seconds)
        logger.info("loaded model '%s' from %s", name, source)
        return model

    async def unload(self, name: str) -> None:
        """Stop serving ``name``: its requests in flight finish, later ones get 404."""
        self._check_model_control("unload")
        model = self.models.get(name)
        if model is None:
            raise NotFoundError(self._no_model(name))
        self._remove(model)
        self.unloaded[name] = model.source
        await model.stop()
        self.metrics.model_unloads.labels(*model.labels).inc()
        logger.info("unloaded model '%s'", name)
