"""Prometheus metrics of a model server.

Every series carries ``model`` and ``version`` labels (both empty on a route that serves no
one model, such as ``/metrics``), so that one server serving several models tells them apart.

With several workers, each process writes its samples to files under
``PROMETHEUS_MULTIPROC_DIR`` (set by the launcher before the workers start) and
``/metrics`` aggregates them, whichever worker answers.
"""

from __future__ import annotations

import os
from collections.abc import Callable

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import multiprocess as prometheus_multiprocess

from quayside.serving.startup import StartupTimes

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
MODEL_LABELS = ("model", "version")
NO_MODEL = ("", "")
"""The model labels of a route that serves no one model (health, ``/metrics``, docs)."""
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024)

disable_created_metrics()  # the *_created series only double what a scraper already knows


class ServerMetrics:
    """The counters and histograms one server keeps, in a registry of its own."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self._multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        registry = None if self._multiprocess else self.registry
        self.requests = Counter(
            "quayside_requests_total",
            "HTTP requests answered",
            ("route", "status", *MODEL_LABELS),
            registry=registry,
        )
        self.latency = Histogram(
            "quayside_request_duration_seconds",
            "Time from request start to the last response byte",
            ("route", *MODEL_LABELS),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "quayside_batch_rows",
            "Rows per model call",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.batch_requests = Histogram(
            "quayside_batch_requests",
            "Requests merged into one model call",
            MODEL_LABELS,
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "quayside_requests_in_flight",
            "Inference requests being handled",
            MODEL_LABELS,
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.model_load = Gauge(
            "quayside_model_load_seconds",
            "Time to load and warm the model, per worker",
            MODEL_LABELS,
            registry=registry,
            multiprocess_mode="max",
        )
        # Per worker, set once when it turns ready; several workers show the slowest one's.
        self.startup_phase = Gauge(
            "quayside_startup_phase_seconds",
            "Time each startup phase took: import (process start to the server imported), "
            "load (package, digests, runtime session), warmup (warm-up inferences)",
            ("phase", *MODEL_LABELS),
            registry=registry,
            multiprocess_mode="max",
        )
        self.startup = Gauge(
            "quayside_startup_seconds",
            "Time from process start to ready",
            MODEL_LABELS,
            registry=registry,
            multiprocess_mode="max",
        )
        self.model_loads = Counter(
            "quayside_model_loads_total",
            "Models loaded after the server started (the repository extension's load)",
            MODEL_LABELS,
            registry=registry,
        )
        self.model_unloads = Counter(
            "quayside_model_unloads_total",
            "Models unloaded (the repository extension's unload)",
            MODEL_LABELS,
            registry=registry,
        )
        self.model_load_failures = Counter(
            "quayside_model_load_failures_total",
            "Loads of a new version that failed, leaving the one serving before (a moved alias, a reload)",
            ("model",),
            registry=registry,
        )
        self.model_evictions = Counter(
            "quayside_model_evictions_total",
            "Models unloaded to stay within the memory budget (they load again on their next request)",
            MODEL_LABELS,
            registry=registry,
        )
        self.reload_wait = Histogram(
            "quayside_model_reload_wait_seconds",
            "Time a request waited for its evicted model to be loaded again",
            MODEL_LABELS,
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.model_memory = Gauge(
            "quayside_model_memory_bytes",
            "What each loaded model counts against the memory budget (0 once evicted or replaced)",
            MODEL_LABELS,
            registry=registry,
            multiprocess_mode="max",
        )

    def observe_startup(self, times: StartupTimes, model: str, version: str) -> None:
        """The startup phases of ``model`` (the import phase is the process's, the same for each)."""
        for phase, seconds in times.phases().items():
            self.startup_phase.labels(phase, model, version).set(seconds)
        self.startup.labels(model, version).set(times.total_s)

    def batch_observer(self, model: str, version: str) -> Callable[[int, int], None]:
        """What a batcher calls after each model call of ``model``: its rows and merged requests."""
        rows_series = self.batch_rows.labels(model, version)
        requests_series = self.batch_requests.labels(model, version)

        def observe_batch(rows: int, requests: int) -> None:
            rows_series.observe(rows)
            requests_series.observe(requests)

        return observe_batch

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's samples."""
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
