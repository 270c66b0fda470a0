"""Running the app: one uvicorn process, or a supervisor with N worker processes.

One worker serves in this process with the model the caller already loaded.
Several workers each load the model themselves (the model is loaded once per
worker) and share one listening socket; Prometheus samples then go through
files in a temporary directory so that ``/metrics`` adds up every worker.
"""

from __future__ import annotations

import functools
import os
import shutil
import signal
import socket
import tempfile
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.supervisors import Multiprocess

from quayside.serving.app import create_app
from quayside.serving.metrics import MULTIPROCESS_ENV
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


def worker_app(package: str, options: ServeOptions) -> Any:
    """App factory run inside each worker process: load the model there, then build the app."""
    return create_app(load_for_serving(package, options), options)


REUSE_PORT_ENV = "QUAYSIDE_REUSE_PORT"
"""Set to 1 by ``quayside deploy --target docker``: the next container binds the same port beside this one."""


try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # no httptools: uvicorn's default (h11) and its default shutdown
    HttpToolsProtocol = None


if HttpToolsProtocol is not None:

    class DrainingHttpToolsProtocol(HttpToolsProtocol):
        """HTTP/1.1 that drains keep-alive connections without racing the client.

        uvicorn closes idle keep-alive connections at shutdown; a client that sent its
        next request at that instant gets a reset. Here an idle connection answers its
        next request with ``Connection: close`` instead, or is closed by the usual
        keep-alive timeout, so the client learns of the close from a response.
        (Module level: worker processes are spawned, and the config is pickled.)
        """

        draining = False

        def shutdown(self) -> None:
            if self.cycle is not None and not self.cycle.response_complete:
                self.cycle.keep_alive = False
                return
            self.draining = True
            if self.timeout_keep_alive_task is None:  # opened, no request yet: give it the usual time
                self.timeout_keep_alive_task = self.loop.call_later(
                    self.timeout_keep_alive, self.timeout_keep_alive_handler
                )

        def on_headers_complete(self) -> None:
            super().on_headers_complete()
            if self.draining:
                self.cycle.keep_alive = False


def _draining_protocol() -> Any:
    return "auto" if HttpToolsProtocol is None else DrainingHttpToolsProtocol


def _reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening address several processes share (SO_REUSEPORT): old and new containers overlap."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _config(app: Any, options: ServeOptions, *, factory: bool, reuse_port: bool = False) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        host=options.host,
        port=options.port,
        workers=options.workers,
        factory=factory,
        http=_draining_protocol() if reuse_port else "auto",
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


def serve(package: str | Path, options: ServeOptions, runtime: ModelRuntime | None = None) -> None:
    """Serve a package until SIGTERM/SIGINT; in-flight requests finish within the grace period.

    With one worker, ``runtime`` (already loaded by the caller, which then saw any
    loading error first) is served in this process.
    """
    _exit_cleanly_on_sigterm()
    reuse_port = os.environ.get(REUSE_PORT_ENV) == "1"
    if options.workers == 1:
        app = create_app(runtime or load_for_serving(package, options), options)
        config = _config(app, options, factory=False, reuse_port=reuse_port)
        # uvicorn calls listen() only after the app's startup, so a shared port gets
        # this process's connections only once it can serve them.
        uvicorn.Server(config).run(
            sockets=[_reuse_port_socket(options.host, options.port)] if reuse_port else None
        )
        return
    metrics_dir = tempfile.mkdtemp(prefix="quayside-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir  # read by prometheus_client in each spawned worker
    try:
        config = _config(
            functools.partial(worker_app, str(package), options), options, factory=True, reuse_port=reuse_port
        )
        listener = _reuse_port_socket(options.host, options.port) if reuse_port else config.bind_socket()
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
        version=options.model_version,
        name=options.model_name,
    )
