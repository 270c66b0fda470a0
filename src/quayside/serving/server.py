"""Running the app: one uvicorn process, or a supervisor with N worker processes.

One worker serves in this process with the models the caller already loaded.
Several workers each load every model themselves (each model is loaded once per
worker) and share one listening socket (and bind the gRPC port together with
SO_REUSEPORT, :mod:`quayside.serving.grpc.transport`); Prometheus samples then go through
files in a temporary directory so that ``/metrics`` adds up every worker.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from quayside.errors import UsageError
from quayside.serving.app import create_app
from quayside.serving.following import VersionProbe
from quayside.serving.grpc.transport import check_port_free, with_grpc
from quayside.serving.listener import draining_protocol, reuse_port_socket
from quayside.serving.metrics import MULTIPROCESS_ENV
from quayside.serving.model_server import ModelLoader
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import ModelRuntime, load_runtime


def logging_config(*, quiet: bool) -> dict[str, Any]:
    """Logging for server processes: lifecycle lines for people, JSON lines for the access log."""
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {
            "lifecycle": {"format": "%(asctime)s %(levelname)s [%(process)d] %(message)s"},
            "json": {"format": "%(message)s"},
        },
        "handlers": {
            "stderr": {
                "class": "logging.StreamHandler",
                "formatter": "lifecycle",
                "stream": "ext://sys.stderr",
            },
            "access": {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"},
        },
        "loggers": {
            "uvicorn": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.error": {"handlers": ["stderr"], "level": "WARNING", "propagate": False},
            "uvicorn.access": {"handlers": [], "level": "WARNING", "propagate": False},
            "quayside.serving": {"handlers": ["stderr"], "level": "INFO", "propagate": False},
            "quayside.access": {
                "handlers": ["access"],
                "level": "WARNING" if quiet else "INFO",
                "propagate": False,
            },
        },
    }


Resolver = Callable[[str], tuple[Path, str | None, str | None]]
"""A model URI (or path) to its package directory and registered name and version (if any): the
launcher's (``quayside serve``'s) own resolution, handed in, since serving imports no registry."""

URI_PREFIXES = ("models:/", "runs:/")


@dataclass(frozen=True)
class ModelSpec:
    """One model to serve: its package directory, and the name and version to serve it under."""

    path: str
    name: str | None = None
    """None: the package's own name."""
    version: str | None = None
    source: str = ""
    """What the user named (a path or URI), as the repository index and reloads show it."""


def worker_app(
    specs: Sequence[ModelSpec],
    options: ServeOptions,
    resolver: Resolver | None = None,
    probe: VersionProbe | None = None,
) -> Any:
    """App factory run inside each worker process: load every model there, then build the app."""
    return serving_app([load_spec(spec, options) for spec in specs], options, specs, resolver, probe)


def serving_app(
    runtimes: ModelRuntime | Sequence[ModelRuntime],
    options: ServeOptions,
    specs: Sequence[ModelSpec] = (),
    resolver: Resolver | None = None,
    probe: VersionProbe | None = None,
) -> Any:
    """The app one worker runs: REST, and gRPC beside it on ``options.grpc_port`` (unless 0)."""
    app = create_app(
        runtimes,
        options,
        loader=model_loader(options, resolver),
        sources=[spec.source or spec.path for spec in specs],
        probe=probe,
    )
    return with_grpc(app, options)


def model_loader(options: ServeOptions, resolver: Resolver | None) -> ModelLoader:
    """How a running server loads a model it is asked to (the repository extension's load)."""
    return functools.partial(_load_source, options, resolver)


def _load_source(options: ServeOptions, resolver: Resolver | None, source: str, name: str) -> ModelRuntime:
    if resolver is not None:
        path, _, version = resolver(source)
        return load_spec(ModelSpec(str(path), name, version, source), options)
    if source.startswith(URI_PREFIXES):
        raise UsageError(
            f"this server cannot resolve the model URI '{source}' (it was started without a registry); "
            "give the package's path instead"
        )
    return load_spec(ModelSpec(source, name, None, source), options)


def load_spec(spec: ModelSpec, options: ServeOptions) -> ModelRuntime:
    """Load and warm one model as the options say, under the spec's name and version."""
    return load_runtime(
        spec.path,
        trust=options.trust,
        runtime=options.runtime,
        intra_op_threads=options.intra_op_threads,
        spinning=options.ort_spinning,
        version=spec.version,
        name=spec.name,
    )


def _config(app: Any, options: ServeOptions, *, factory: bool) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        workers=options.workers,
        factory=factory,
        http=draining_protocol() if options.reuse_port else "auto",
        lifespan="on",
        access_log=False,
        log_config=logging_config(quiet=options.quiet),
        timeout_graceful_shutdown=int(options.grace_period_s) if options.grace_period_s else None,
        server_header=False,
    )


def _exit_cleanly_on_sigterm() -> None:
    # uvicorn re-raises the signal that stopped it once it has shut down; with the
    # default action that would end the process "killed by SIGTERM" instead of 0.
    signal.signal(signal.SIGTERM, lambda signum, frame: None)


def serve(
    package: str | Path | Sequence[ModelSpec],
    options: ServeOptions,
    runtime: ModelRuntime | Sequence[ModelRuntime] | None = None,
    resolver: Resolver | None = None,
    probe: VersionProbe | None = None,
) -> None:
    """Serve packages until SIGTERM/SIGINT; in-flight requests finish within the grace period.

    ``package`` is one package directory (served under ``options.model_name`` and
    ``model_version``), or the specs of several models. With one worker, ``runtime`` (already
    loaded by the caller, which then saw any loading error first) is served in this process.
    ``resolver`` resolves the model URIs the repository extension is asked to load, and
    ``probe`` says which version a moving URI (an alias) names now, for the server to follow it.
    """
    specs = (
        [ModelSpec(str(package), options.model_name, options.model_version, str(package))]
        if isinstance(package, str | Path)
        else list(package)
    )
    _exit_cleanly_on_sigterm()
    check_port_free(options)
    if options.workers == 1:
        runtimes = runtime if runtime is not None else [load_spec(spec, options) for spec in specs]
        app = serving_app(runtimes, options, specs, resolver, probe)
        config = _config(app, options, factory=False)
        # uvicorn calls listen() only after the app's startup, so a shared port gets
        # this process's connections only once it can serve them.
        uvicorn.Server(config).run(
            sockets=[reuse_port_socket(options.host, options.port)] if options.reuse_port else None
        )
        return
    metrics_dir = tempfile.mkdtemp(prefix="quayside-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir  # read by prometheus_client in each spawned worker
    try:
        config = _config(
            functools.partial(worker_app, specs, options, resolver, probe), options, factory=True
        )
        listener = (
            reuse_port_socket(options.host, options.port) if options.reuse_port else config.bind_socket()
        )
        Multiprocess(config, sockets=[listener]).run()
    finally:
        shutil.rmtree(metrics_dir, ignore_errors=True)


def load_for_serving(package: str | Path, options: ServeOptions) -> ModelRuntime:
    """Load and warm a package as the options say (trust, runtime, ORT threads per worker)."""
    return load_runtime(
        package,
        trust=options.trust,
        runtime=options.runtime,
        intra_op_threads=options.intra_op_threads,
        spinning=options.ort_spinning,
        version=options.model_version,
        name=options.model_name,
    )
