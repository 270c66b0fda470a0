"""Liveness and readiness of one server process.

Ready means the model is loaded and warmed and the process is not draining.
On SIGTERM the process turns unready first, so a load balancer probing
readiness stops sending it traffic while in-flight requests finish.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Any

logger = logging.getLogger("quayside.serving")

SignalHandler = Callable[[int, FrameType | None], Any] | int | None


class Health:
    """The readiness flag of one worker, and the hook that clears it on shutdown signals."""

    def __init__(self) -> None:
        self.model_loaded = False
        self.draining = False
        self.in_flight = 0

    @property
    def ready(self) -> bool:
        return self.model_loaded and not self.draining

    def drain(self) -> None:
        if not self.draining:
            self.draining = True
            logger.info(
                "shutting down: readiness is now false; %d requests in flight will finish", self.in_flight
            )

    def watch_signals(self) -> None:
        """Turn unready on SIGTERM/SIGINT, then hand the signal to the handler already installed.

        The server (uvicorn) installs its own handlers before the app starts; this
        wraps them, so draining starts before the server stops accepting.
        """
        if threading.current_thread() is not threading.main_thread():
            return  # signals reach only the main thread (in-process test clients run elsewhere)
        for sig in (signal.SIGTERM, signal.SIGINT):
            previous = signal.getsignal(sig)
            if getattr(previous, "_quayside_drain", False):
                continue
            signal.signal(sig, self._chain(previous))

    def _chain(self, previous: SignalHandler) -> Callable[[int, FrameType | None], None]:
        def handler(sig: int, frame: FrameType | None) -> None:
            self.drain()
            if callable(previous):
                previous(sig, frame)

        handler._quayside_drain = True  # type: ignore[attr-defined]
        return handler
