"""How a server listens: a port shared with a successor (SO_REUSEPORT), and keep-alive draining.

``quayside deploy --target docker`` starts the new container on the same port
beside the old one; once it listens (after its model is loaded), the old one is
sent SIGTERM. Keep-alive connections to the old one are drained with a
``Connection: close`` response instead of a reset, so no client sees an error.
"""

from __future__ import annotations

import socket
from typing import Any

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


def draining_protocol() -> Any:
    return "auto" if HttpToolsProtocol is None else DrainingHttpToolsProtocol


def reuse_port_socket(host: str, port: int) -> socket.socket:
    """A listening address several processes share (SO_REUSEPORT): old and new containers overlap."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock
