"""What a model server is told at start: where it listens and how it batches, limits and stops."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from quayside.errors import UsageError
from quayside.packager.package import Runtime
from quayside.serving.dispatch import DEFAULT_INLINE_BELOW_US

MIB = 1024 * 1024
DEFAULT_MAX_BODY_BYTES = 10 * MIB


@dataclass(frozen=True)
class ServeOptions:
    """Options of ``quayside serve``; every field has a default that works on a laptop."""

    host: str = "127.0.0.1"
    port: int = 8080
    grpc_port: int = 8081
    """Port of the gRPC Open Inference Protocol (KServe's ``inference.GRPCInferenceService``) beside
    REST, on the same host; 0 turns it off."""
    workers: int = 1
    """Server processes; each loads the model once and gets ``cores // workers`` ORT threads."""
    batching: bool = True
    """Merge concurrent requests into one model call (only when every input and output has a batch dim)."""
    max_batch_size: int = 64
    """Most rows the batcher merges into one model call; a larger request runs as a call of its own."""
    max_batch_latency_ms: float = 2.0
    """Longest a batch waits for requests still being received to join it (it never waits otherwise)."""
    inline_below_us: float = DEFAULT_INLINE_BELOW_US
    """Model calls predicted (from the cost measured at load) to take less than this many microseconds
    run on the event loop instead of a thread: cheaper than the round trip to one. 0 sends every call
    to the thread pool."""
    ort_spinning: bool = False
    """Keep ONNX Runtime's idle intra-op threads spinning between calls. They then start each call
    at once, which at low concurrency answers more and sooner (one-row requests over one connection
    on the benchmark's 2-core VM: 1.5x the requests/s), but they keep a core busy while idle, and
    under load that core is the one the event loop needs to parse requests (64 connections: 0.8x):
    off by default."""
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    """Largest request body accepted; larger ones get 413."""
    grace_period_s: float = 30.0
    """On SIGTERM, how long in-flight requests may take to finish before they are cut off."""
    quiet: bool = False
    """No access-log line per request."""
    trust: bool = False
    """Allow packages whose native model is a Python pickle (they run code when loaded)."""
    runtime: Runtime = "auto"
    """ONNX Runtime when the package is ONNX-servable (auto), or force one."""
    reuse_port: bool = False
    """Share the port with another server (SO_REUSEPORT) and drain keep-alive connections on
    shutdown: how ``quayside deploy --target docker`` replaces a container without downtime."""
    model_name: str | None = None
    """Name served under (``/v2/models/<name>``); the registered name when served from the registry,
    else the package's own name."""
    model_version: str | None = None
    """Version reported in V2 metadata and responses (the registry version when served from one)."""
    model_control: bool = False
    """Let callers load and unload models (the repository extension's load and unload, over REST
    and gRPC); off by default, since a load reads any path or URI the server can reach. The index
    is always answered."""
    follow_interval_s: float = 10.0
    """How often a model served from a moving URI (``models:/NAME@ALIAS``, a stage, ``latest``)
    asks the registry which version it names; when it moves, the new version is loaded beside the
    old, traffic switches, and the old one drains. 0: never (serve the version found at start)."""
    memory_budget_mb: float | None = None
    """Most the loaded models may count together (each counts its runtime's model files, MB of
    10^6 bytes); loading past it first unloads the least recently used idle model, which loads
    again on its next request. None: no budget."""
    allowed_hosts: tuple[str, ...] | None = None
    """Host names answered (any port; ``*``: any); None: by ``host`` (:func:`quayside.hosts.default_allowed_hosts`)."""
    auth_token: bytes | None = field(default=None, repr=False)
    """The bearer token inference and metadata routes need (read from ``--auth-token-file`` at
    start, :mod:`quayside.serving.auth`); None: no token."""

    def __post_init__(self) -> None:
        checks = [
            (1 <= self.port <= 65535 or self.port == 0, f"port must be 1-65535, not {self.port}"),
            (0 <= self.grpc_port <= 65535, f"the gRPC port must be 1-65535 (0: off), not {self.grpc_port}"),
            (
                self.grpc_port == 0 or self.grpc_port != self.port,
                f"the gRPC port must differ from the HTTP port ({self.port}); choose another with --grpc-port",
            ),
            (self.workers >= 1, f"workers must be at least 1, not {self.workers}"),
            (self.max_batch_size >= 1, f"max batch size must be at least 1, not {self.max_batch_size}"),
            (self.max_batch_latency_ms >= 0, "max batch latency cannot be negative"),
            (self.inline_below_us >= 0, "the inline threshold cannot be negative"),
            (self.max_body_bytes >= 1024, "the body limit must be at least 1 KiB"),
            (self.grace_period_s >= 0, "the grace period cannot be negative"),
            (self.follow_interval_s >= 0, "the follow interval cannot be negative (0: do not follow)"),
            (
                self.memory_budget_mb is None or self.memory_budget_mb > 0,
                f"the memory budget must be more than 0 MB, not {self.memory_budget_mb}",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise UsageError(message)

    @property
    def memory_budget_bytes(self) -> int | None:
        """``memory_budget_mb`` in bytes; None without a budget."""
        return None if self.memory_budget_mb is None else int(self.memory_budget_mb * 1e6)

    @property
    def intra_op_threads(self) -> int:
        """ORT threads per worker: the cores shared out between workers, at least one."""
        return max(1, (os.cpu_count() or 1) // self.workers)


def max_body_bytes(max_body_mb: float) -> int:
    """``--max-body-mb`` (MiB, as both serve commands take it) in bytes."""
    return int(max_body_mb * MIB)


def grpc_line(options: ServeOptions) -> str:
    """How the start message names the gRPC listener: ``" and gRPC on host:port"``, or nothing when off."""
    if not options.grpc_port:
        return ""
    return f" and gRPC on {options.host}:{options.grpc_port}"
