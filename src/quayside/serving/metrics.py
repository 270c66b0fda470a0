"""Prometheus metrics of a model server.

With several workers, each process writes its samples to files under
``PROMETHEUS_MULTIPROC_DIR`` (set by the launcher before the workers start) and
``/metrics`` aggregates them, whichever worker answers.
"""

from __future__ import annotations

import os

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
            "quayside_requests_total", "HTTP requests answered", ("route", "status"), registry=registry
        )
        self.latency = Histogram(
            "quayside_request_duration_seconds",
            "Time from request start to the last response byte",
            ("route",),
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.batch_rows = Histogram(
            "quayside_batch_rows", "Rows per model call", buckets=BATCH_BUCKETS, registry=registry
        )
        self.batch_requests = Histogram(
            "quayside_batch_requests",
            "Requests merged into one model call",
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.in_flight = Gauge(
            "quayside_requests_in_flight",
            "Inference requests being handled",
            registry=registry,
            multiprocess_mode="livesum",
        )
        self.model_load = Gauge(
            "quayside_model_load_seconds",
            "Time to load and warm the model, per worker",
            registry=registry,
            multiprocess_mode="max",
        )
        # Per worker, set once when it turns ready; several workers show the slowest one's.
        self.startup_phase = Gauge(
            "quayside_startup_phase_seconds",
            "Time each startup phase took: import (process start to the server imported), "
            "load (package, digests, runtime session), warmup (warm-up inferences)",
            ("phase",),
            registry=registry,
            multiprocess_mode="max",
        )
        self.startup = Gauge(
            "quayside_startup_seconds",
            "Time from process start to ready",
            registry=registry,
            multiprocess_mode="max",
        )

    def observe_startup(self, times: StartupTimes) -> None:
        for phase, seconds in times.phases().items():
            self.startup_phase.labels(phase).set(seconds)
        self.startup.set(times.total_s)

    def observe_batch(self, rows: int, requests: int) -> None:
        self.batch_rows.observe(rows)
        self.batch_requests.observe(requests)

    def render(self) -> bytes:
        """The Prometheus text exposition of every worker's samples."""
        if not self._multiprocess:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        prometheus_multiprocess.MultiProcessCollector(registry)
        return generate_latest(registry)
