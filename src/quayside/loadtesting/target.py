"""The server under load: its base URL, its gRPC address, the model it serves and that model's inputs."""

from __future__ import annotations

import time
from dataclasses import dataclass
from urllib.parse import urlsplit

import httpx

from quayside.errors import NotFoundError, UnavailableError, UsageError
from quayside.loadtesting.payloads import schema_from_v2_metadata
from quayside.packager.signature import Arrays, Schema


@dataclass(frozen=True)
class Target:
    base_url: str
    model_name: str
    schema: Schema
    example: Arrays | None
    """Rows whose ranges payloads stay within; None when only the server's metadata is known."""


def split_url(url: str) -> tuple[str, str | None]:
    """``http://host:port/v2/models/NAME`` as ``("http://host:port", "NAME")``; a bare base URL has no name."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"'{url}' is not an http(s):// URL")
    base = f"{parts.scheme}://{parts.netloc}"
    segments = [s for s in parts.path.split("/") if s]
    if len(segments) >= 3 and segments[:2] == ["v2", "models"]:
        return base, segments[2]
    if segments:
        raise UsageError(f"'{url}': give the server's base URL or http://HOST:PORT/v2/models/NAME")
    return base, None


GRPC_PORT = 8081
"""The port ``quayside serve`` (and its images) answer gRPC on unless told otherwise."""


def parse_grpc_target(text: str) -> str:
    """``HOST:PORT`` (``[::1]:PORT`` for IPv6) checked and returned as given."""
    host, _, port = text.strip().rpartition(":")
    if not host or not port.isdigit() or not 0 < int(port) < 65536 or "/" in text:
        raise UsageError(f"gRPC target '{text}' is not HOST:PORT, e.g. 127.0.0.1:{GRPC_PORT}")
    return text.strip()


def default_grpc_target(base_url: str) -> str:
    """The gRPC address of the server at ``base_url``: its host, on port 8081."""
    host = urlsplit(base_url).hostname or "127.0.0.1"
    return f"[{host}]:{GRPC_PORT}" if ":" in host else f"{host}:{GRPC_PORT}"


def wait_ready(base_url: str, timeout_s: float = 60.0, *, alive: object = None) -> None:
    """Poll ``/v2/health/ready`` until it answers 200; ``alive()`` returning False stops early."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if callable(alive) and not alive():
            raise UnavailableError(f"the server for {base_url} exited before it was ready")
        try:
            if httpx.get(f"{base_url}/v2/health/ready", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise UnavailableError(f"{base_url} was not ready after {timeout_s:g} s")


def fetch_schema(base_url: str, model_name: str) -> Schema:
    """The input schema the server's V2 model metadata describes."""
    try:
        response = httpx.get(f"{base_url}/v2/models/{model_name}", timeout=10)
    except httpx.TransportError as e:
        raise UnavailableError(f"cannot reach {base_url}: {type(e).__name__}") from None
    if response.status_code == 404:
        raise NotFoundError(f"{base_url} serves no model named '{model_name}'")
    if response.status_code != 200:
        raise UnavailableError(f"{base_url}/v2/models/{model_name} answered HTTP {response.status_code}")
    return schema_from_v2_metadata(response.json())
