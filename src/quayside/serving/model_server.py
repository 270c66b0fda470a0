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
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from quayside.errors import (
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    UnavailableError,
    UsageError,
)
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


@dataclass(frozen=True)
class Evicted:
    """A model the memory budget unloaded: enough to load it again on its next request."""

    source: str
    version: str
    memory_bytes: int


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
        self.evicted: dict[str, Evicted] = {}
        """Models the memory budget unloaded, by name: loaded again on their next request."""
        self.loading: dict[str, asyncio.Future[ServedModel]] = {}
        self._lock = asyncio.Lock()
        for runtime, source in zip(runtimes, [*sources, *[""] * len(runtimes)], strict=False):
            if runtime.name in self.models:
                raise UsageError(f"two models are named '{runtime.name}'; rename one with NAME=MODEL")
            self._add(self._served(runtime, source))
        self._first_name = runtimes[0].name
        budget = options.memory_budget_bytes
        for model in self.models.values():
            if budget is not None and model.memory_bytes > budget:
                raise UsageError(
                    f"model '{model.name}' needs {_mb(model.memory_bytes)}, more than the whole memory "
                    f"budget of {_mb(budget)}; raise --memory-budget-mb"
                )

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
        """Ready when the process is, and no model is missing while it loads: a reload beside the
        version serving now, or of a model evicted by the memory budget, keeps the server ready."""
        return self.health.ready and all(name in self.models or name in self.evicted for name in self.loading)

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
            self.metrics.model_memory.labels(*model.labels).set(model.memory_bytes)
            startup = StartupTimes.until_now(
                imported_at=self.imported_at, load_s=runtime.load_seconds, warmup_s=runtime.warmup_seconds
            )
            self.metrics.observe_startup(startup, *model.labels)
            self._log_ready(model, startup)
        await self.enforce_budget()
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

    async def model(self, name: str, version: str = "") -> ServedModel:
        """The served model a request names (and, when it names one, its version); else 404.

        A model the memory budget evicted is loaded again first (the request waits for it).
        """
        model = self.models.get(name)
        if model is None:
            evicted = self.evicted.get(name)
            if evicted is None or (version and version != evicted.version):
                raise NotFoundError(self._no_model(name))
            model = await self._reload_evicted(name, evicted)
        model.check_version(version)
        return model

    def knows(self, name: str, version: str = "") -> bool:
        """Whether a request for ``name`` would be answered: served now, or evicted (loaded on use)."""
        model = self.models.get(name)
        if model is not None:
            return not version or version == model.version
        evicted = self.evicted.get(name)
        return evicted is not None and (not version or version == evicted.version)

    def _no_model(self, name: str) -> str:
        if name in self.unloaded:
            return f"model '{name}' is unloaded; load it again (POST /v2/repository/models/{name}/load)"
        if name in self.loading:
            return f"model '{name}' is still loading; retry"
        served = ", ".join(f"'{n}'" for n in self.models)
        return f"no model named '{name}' here; this server serves {served}"

    def check_model(self, name: str, version: str = "") -> None:
        """A request names a model this server answers for, and (when it names one) its version; else 404."""
        if not self.knows(name, version):
            model = self.models.get(name)
            if model is not None:
                model.check_version(version)
            raise NotFoundError(self._no_model(name))

    async def invocations_model(self, requested: str | None) -> ServedModel:
        """The model ``/invocations`` answers for: the only one served, or the one ``?model=`` names."""
        if requested:
            return await self.model(requested)
        if len(self.models) == 1 and not self.evicted:  # the common case, on every request: no lists
            return next(iter(self.models.values()))
        names = [*self.models, *(name for name in self.evicted if name not in self.models)]
        if len(names) == 1:
            return await self.model(names[0])
        choices = ", ".join(f"'{n}'" for n in names) or "none (every model is unloaded)"
        raise UsageError(
            f"this server serves {len(names)} models: name one with /invocations?model=NAME "
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
        return await (await self.model(model_name, model_version)).infer_v2(body, header_length)

    async def invocations(self, body: bytes, content_type: str, model: str | None = None) -> bytes:
        """An ``/invocations`` body (JSON or CSV) in, ``{"predictions": ...}`` out."""
        return await (await self.invocations_model(model)).invocations(body, content_type)

    # --- the model repository extension ----------------------------------------------------

    def index(self) -> list[IndexEntry]:
        """Every model this server serves, is loading, evicted, or unloaded, sorted by name."""
        entries = [IndexEntry(m.name, m.version or "", "READY") for m in self.models.values()]
        entries += [
            IndexEntry(
                name, evicted.version, "READY", "evicted by the memory budget; loaded on its next request"
            )
            for name, evicted in self.evicted.items()
            if name not in self.models and name not in self.loading
        ]
        entries += [
            IndexEntry(name, "", "LOADING", "being loaded")
            for name in self.loading
            if name not in self.models
        ]
        entries += [
            IndexEntry(name, "", "UNAVAILABLE", "unloaded")
            for name in self.unloaded
            if name not in self.models and name not in self.loading
        ]
        return sorted(entries, key=lambda entry: entry.name)

    async def load(self, name: str, source: str | None = None) -> ServedModel:
        """Load (or reload) ``name`` from ``source`` (a path or URI; by default where it was loaded
        from before), warm it, and serve it; a model already loaded from there is left as it is
        (:meth:`reload` loads it again)."""
        pending = self.loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        current = self.models.get(name)
        evicted = self.evicted.get(name)
        source = (
            source
            or (current.source if current else "")
            or self.unloaded.get(name, "")
            or (evicted.source if evicted else "")
        )
        if not source:
            raise UsageError(
                f"no model '{name}' to load: give its path or URI as "
                '{"parameters": {"uri": "..."}} in the body'
            )
        if current is not None and current.source == source:
            return current
        self._check_model_control("load")
        return await self._load_once(name, source)

    async def reload(self, name: str) -> ServedModel:
        """Load ``name`` again from where it was loaded (the server's own decision, such as a
        registry alias that moved: no ``--model-control`` needed); the old one serves until the
        new one is warm, then drains."""
        current = self.models.get(name)
        if current is None:
            raise NotFoundError(self._no_model(name))
        try:
            return await self._load_once(name, current.source)
        except Exception:
            self.metrics.model_load_failures.labels(name).inc()
            raise

    def _check_model_control(self, action: str) -> None:
        if not self.options.model_control:
            raise PermissionDeniedError(
                f"this server does not {action} models on request; start it with --model-control to allow it"
            )

    async def _load_once(self, name: str, source: str, *, expected_bytes: int = 0) -> ServedModel:
        """Load ``name`` from ``source`` once: callers that ask while it loads share the one load."""
        pending = self.loading.get(name)
        if pending is not None:
            return await asyncio.shield(pending)
        future: asyncio.Future[ServedModel] = asyncio.get_running_loop().create_future()
        self.loading[name] = future
        try:
            model = await self._load(name, source, expected_bytes)
        except BaseException as e:
            future.set_exception(e)
            future.exception()  # retrieved: a load nobody else awaited logs no warning
            raise
        finally:
            del self.loading[name]
        future.set_result(model)
        return model

    async def _load(self, name: str, source: str, expected_bytes: int) -> ServedModel:
        if expected_bytes:
            await self._make_room(expected_bytes, keep=name)  # the size is known: room before the load
        runtime = await asyncio.to_thread(self.loader, source, name)
        async with self._lock:
            current = self.models.get(name)
            await self._make_room(runtime.memory_bytes - (current.memory_bytes if current else 0), keep=name)
            model = self._served(runtime, source)
            await model.start()
            if current is not None:
                self._remove(current)
            self._add(model)
        self.unloaded.pop(name, None)
        self.evicted.pop(name, None)
        self.metrics.model_loads.labels(*model.labels).inc()
        self.metrics.model_load.labels(*model.labels).set(runtime.load_seconds + runtime.warmup_seconds)
        self.metrics.model_memory.labels(*model.labels).set(model.memory_bytes)
        logger.info("loaded model '%s' from %s", name, source)
        if current is not None:
            if current.labels != model.labels:
                self.metrics.model_memory.labels(*current.labels).set(0)
            await self._retire(current)
        return model

    async def _retire(self, model: ServedModel) -> None:
        """Let ``model``'s requests finish, then stop it; latecomers go to whatever serves its name."""
        name = model.name
        await model.retire(lambda: self.model(name), self.options.grace_period_s)

    async def unload(self, name: str) -> None:
        """Stop serving ``name``: its requests in flight finish, later ones get 404."""
        self._check_model_control("unload")
        model = self.models.get(name)
        if model is None:
            evicted = self.evicted.pop(name, None)
            if evicted is None:
                raise NotFoundError(self._no_model(name))
            self.unloaded[name] = evicted.source
            logger.info("unloaded model '%s' (it was evicted)", name)
            return
        self._remove(model)
        self.unloaded[name] = model.source
        await self._retire(model)
        self.metrics.model_unloads.labels(*model.labels).inc()
        logger.info("unloaded model '%s'", name)

    # --- the memory budget -----------------------------------------------------------------

    @property
    def memory_used(self) -> int:
        """What the models loaded now count against the memory budget, in bytes."""
        return sum(model.memory_bytes for model in self.models.values())

    async def enforce_budget(self) -> None:
        """Evict least recently used models until those loaded fit the budget (after a start
        with more models than fit)."""
        await self._make_room(0, keep="")

    async def _make_room(self, needed: int, *, keep: str) -> None:
        """Evict idle models, least recently used first, until ``needed`` more bytes fit the budget."""
        budget = self.options.memory_budget_bytes
        if budget is None or self.memory_used + needed <= budget:
            return
        if needed > budget:
            raise InvalidStateError(
                f"model '{keep}' needs {_mb(needed)}, more than the whole memory budget of {_mb(budget)} "
                "(--memory-budget-mb)"
            )
        while self.memory_used + needed > budget:
            idle = [m for m in self.models.values() if m.name != keep and not m.active]
            if not idle:
                raise UnavailableError(
                    f"loading model '{keep}' needs {_mb(needed)} and the memory budget of {_mb(budget)} "
                    f"holds {_mb(self.memory_used)} of models that are all answering requests; retry"
                )
            await self._evict(min(idle, key=lambda m: m.last_used))

    async def _evict(self, model: ServedModel) -> None:
        self._remove(model)
        self.evicted[model.name] = Evicted(model.source, model.version or "", model.memory_bytes)
        self.metrics.model_evictions.labels(*model.labels).inc()
        self.metrics.model_memory.labels(*model.labels).set(0)
        logger.info(
            "evicted model '%s' (%s) to stay within the memory budget; it loads again on its next request",
            model.name,
            _mb(model.memory_bytes),
        )
        await self._retire(model)

    async def _reload_evicted(self, name: str, evicted: Evicted) -> ServedModel:
        started = time.perf_counter()
        try:
            return await self._load_once(name, evicted.source, expected_bytes=evicted.memory_bytes)
        finally:
            self.metrics.reload_wait.labels(name, evicted.version).observe(time.perf_counter() - started)


def _mb(size: int) -> str:
    return f"{size / 1e6:.1f} MB"
