"""Docker deployments: model containers on the host network, replaced without a failed request.

A deployment is the set of containers labelled ``io.quayside.deployment=<name>``.
Replacing one starts the new container on the same port beside the old one (the
server binds with SO_REUSEPORT when ``QUAYSIDE_REUSE_PORT=1``; containers share the
host network and the image's fixed UID, which the kernel requires for sharing),
waits until the new server listens and answers ready, and only then stops the old
one with SIGTERM: it turns unready, closes its listener (new connections now all
reach the new server), finishes in-flight requests, and answers the next request
of each keep-alive connection with ``Connection: close``, so no client sees a reset.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quayside.errors import InvalidStateError, NotFoundError, UsageError
from quayside.packager.labels import (
    DEPLOYMENT_LABEL,
    DEPLOYMENT_PORT_LABEL,
    MODEL_DIGEST_LABEL,
    MODEL_NAME_LABEL,
    MODEL_VERSION_LABEL,
)

Log = Callable[[str], None]

REUSE_PORT_ENV = "QUAYSIDE_REUSE_PORT"
AUTH_TOKEN_FILE_ENV = "QUAYSIDE_AUTH_TOKEN_FILE"
"""Read by the image's server (quayside.serving.auth, which this leaf does not import)."""
CONTAINER_TOKEN_PATH = "/run/secrets/quayside-auth-token"
_LISTEN = "0A"
MIGRATE_SYSCTL = Path("/proc/sys/net/ipv4/tcp_migrate_req")


@dataclass(frozen=True)
class Deployment:
    """One container of a deployment, as ``quayside deployments`` lists it."""

    name: str
    container: str
    image: str
    model: str
    version: str
    port: int
    status: str


def _describe(container: Any) -> Deployment:
    labels = container.labels or {}
    health = container.attrs.get("State", {}).get("Health", {}).get("Status")
    return Deployment(
        name=labels.get(DEPLOYMENT_LABEL, ""),
        container=container.name,
        image=(container.image.tags or [container.image.short_id])[0] if container.image else "",
        model=labels.get(MODEL_NAME_LABEL, ""),
        version=labels.get(MODEL_VERSION_LABEL) or labels.get(MODEL_DIGEST_LABEL, "")[:12],
        port=int(labels.get(DEPLOYMENT_PORT_LABEL, "0")),
        status=f"{container.status} ({health})" if health else container.status,
    )


def _containers(client: Any, name: str | None = None) -> list[Any]:
    selector = f"{DEPLOYMENT_LABEL}={name}" if name else DEPLOYMENT_LABEL
    return sorted(client.containers.list(all=True, filters={"label": selector}), key=lambda c: c.name)


def deployments(client: Any) -> list[Deployment]:
    return [_describe(c) for c in _containers(client)]


def listeners(port: int, proc_net: Path = Path("/proc/net")) -> int | None:
    """How many sockets listen on ``port`` in this network namespace (None where /proc says nothing)."""
    count, readable = 0, False
    for table in ("tcp", "tcp6"):
        try:
            lines = (proc_net / table).read_text().splitlines()[1:]
        except OSError:
            continue
        readable = True
        for line in lines:
            fields = line.split()
            if len(fields) > 3 and fields[3] == _LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                count += 1
    return count if readable else None


def _ready(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/v2/health/ready", timeout=2) as response:
            return response.status == 200
    except (urllib.error.URLError, OSError):
        return False


def deploy_container(
    client: Any,
    *,
    image: str,
    name: str,
    port: int,
    workers: int,
    grace_period_s: float,
    log: Log,
    ready_timeout_s: float = 120,
    auth_token_file: Path | None = None,
    grpc_port: int | None = None,
    environment: Mapping[str, str] | None = None,
) -> Deployment:
    """Start ``image`` as deployment ``name`` on ``port``; stop the previous container once it serves.

    ``grpc_port`` is where its gRPC endpoint listens (default ``port + 1``; 0: off). On the host
    network each deployment needs its own: two sharing one would split gRPC calls between them.

    With ``auth_token_file``, that file is mounted read-only into the container and its server
    requires the token in it on inference and metadata routes. ``environment`` is added to the
    container's (what it follows, for one).
    """
    previous = [c for c in _containers(client, name) if c.status == "running"]
    baseline = listeners(port)
    if not previous and baseline:
        raise UsageError(f"port {port} is already in use on this host; choose another with --port")
    grpc = port + 1 if grpc_port is None else grpc_port
    environment = {
        **(environment or {}),
        "PORT": str(port),
        "GRPC_PORT": str(grpc),
        "WORKERS": str(workers),
        REUSE_PORT_ENV: "1",
    }
    volumes = {}
    if auth_token_file is not None:
        volumes[str(auth_token_file.resolve())] = {"bind": CONTAINER_TOKEN_PATH, "mode": "ro"}
        environment[AUTH_TOKEN_FILE_ENV] = CONTAINER_TOKEN_PATH
    container = client.containers.run(
        image,
        detach=True,
        name=f"quayside-{name}-{time.time_ns() // 1_000_000}",
        network_mode="host",
        environment=environment,
        volumes=volumes,
        labels={DEPLOYMENT_LABEL: name, DEPLOYMENT_PORT_LABEL: str(port)},
        restart_policy={"Name": "unless-stopped"},
        stop_signal="SIGTERM",
    )
    log(f"started {container.name} on port {port}; waiting until it serves")
    try:
        _wait_until_serving(container, port, baseline, ready_timeout_s)
    except BaseException:
        _remove(container, grace_period_s)
        raise
    log(f"{container.name} is ready")
    for old in previous:
        log(f"stopping {old.name} (SIGTERM: it drains in-flight requests, up to {grace_period_s:.0f} s)")
        _remove(old, grace_period_s)
    for leftover in _containers(client, name):
        if leftover.id != container.id and leftover.status != "running":
            leftover.remove(force=True)
    container.reload()
    return _describe(container)


def _wait_until_serving(container: Any, port: int, baseline: int | None, timeout_s: float) -> None:
    """Until the new container listens (one more listener than before) and the port answers ready.

    While the old container still listens on the same port, a readiness request may
    reach either; the listener count is what says the new one has bound. Uvicorn
    listens only once the app has started, so listening means the model is loaded.
    """
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        if container.status in ("exited", "dead"):
            raise InvalidStateError(
                f"the new container {container.name} exited before it served; the previous one (if any) "
                f"keeps serving. Its last log lines: {_tail(container)}"
            )
        now = listeners(port)
        bound = now is None or baseline is None or now > baseline
        if bound and _ready(port):
            return
        time.sleep(0.1)
    raise InvalidStateError(
        f"the new container {container.name} was not ready within {timeout_s:.0f} s; it was removed and the "
        f"previous one (if any) keeps serving. Its last log lines: {_tail(container)}"
    )


def _tail(container: Any) -> str:
    try:
        text = container.logs(tail=5).decode("utf-8", "replace")
    except Exception:  # the logs are a courtesy in an error message; the error is the point
        return "(no logs)"
    return " | ".join(line.strip() for line in text.splitlines() if line.strip()) or "(empty)"


def _remove(container: Any, grace_period_s: float) -> None:
    container.stop(timeout=int(grace_period_s) + 5)
    container.remove(force=True)


def remove_deployment(client: Any, name: str, *, grace_period_s: float, log: Log) -> int:
    """Stop (gracefully) and remove every container of deployment ``name``."""
    found = _containers(client, name)
    if not found:
        raise NotFoundError(f"no Docker deployment named '{name}' (quayside deployments lists them)")
    for container in found:
        log(f"stopping {container.name}")
        _remove(container, grace_period_s)
    return len(found)


def connection_migration_enabled() -> bool | None:
    """Whether the kernel hands a closed SO_REUSEPORT listener's queued connections to its sibling."""
    try:
        return MIGRATE_SYSCTL.read_text().strip() == "1"
    except OSError:
        return None
