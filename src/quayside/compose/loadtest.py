"""A model under load: served here or as a built image, loaded with requests from its signature, reported on.

``quayside loadtest`` and :func:`quayside.compose.promotion.promote` both run load
through these functions; judging the figures is :mod:`quayside.slo`'s job. With
``protocol="grpc"`` the server served here (or the image run here) also answers gRPC
on a free port of its own, and the users call ``ModelInfer`` there.
Locust is imported only when load starts (it monkey-patches on import).
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.models import resolve_registered
from quayside.config import Settings
from quayside.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from quayside.compose.clients import RegistryClient
    from quayside.loadtesting.runner import LoadOptions
    from quayside.registry.loadtests import LoadTestReport
    from quayside.slo import Objective, Verdict

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``500ms`` or a plain number of seconds."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f"--duration '{text}' is not a positive duration like 30s, 2m or 500ms")
    return float(match.group(1)) * _UNITS[match.group(2)]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def grpc_port_for(protocol: str) -> int | None:
    """A free port for the gRPC listener of a server started for a ``grpc`` load test; None otherwise."""
    return free_port() if protocol == "grpc" else None


def local_grpc_target(port: int | None) -> str | None:
    """The gRPC address of a server started here with :func:`grpc_port_for`'s port."""
    return None if port is None else f"127.0.0.1:{port}"


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _environment(settings: Settings) -> dict[str, str]:
    """This process's environment with its ``QUAYSIDE_*`` variables replaced by ``settings``'."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("QUAYSIDE_")}
    for field, value in settings.model_dump().items():
        if value is not None:
            env[f"QUAYSIDE_{field.upper()}"] = str(value)
    return env


@contextlib.contextmanager
def served_locally(
    model: str,
    *,
    trust: bool,
    log_path: Path,
    settings: Settings | None = None,
    grpc_port: int | None = None,
    log: Log = no_log,
) -> Iterator[str]:
    """``quayside serve MODEL`` on a free 127.0.0.1 port until the block ends; yields its base URL.

    gRPC listens on 127.0.0.1:``grpc_port`` when one is given, and is off otherwise.

    The server resolves a model URI with ``settings`` (default: this process's ``QUAYSIDE_*``
    environment). When the block fails, the end of the server's log goes to ``log``.
    """
    from quayside.loadtesting.target import wait_ready

    port = free_port()
    command = [sys.executable, "-m", "quayside", "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--quiet", "--grpc-port", str(grpc_port or 0), *(["--trust"] if trust else [])]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as server_log:
        env = None if settings is None else _environment(settings)
        process = subprocess.Popen(command, stdout=server_log, stderr=subprocess.STDOUT, env=env)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, alive=lambda: process.poll() is None)
        yield base_url
    except Exception:
        log(f"server log ({log_path}):\n{log_path.read_text(errors='replace')[-2000:]}")
        raise
    finally:
        _stop(process)


@contextlib.contextmanager
def served_image(
    image: str, *, model_name: str, model_version: str | None, grpc_port: int | None = None
) -> Iterator[str]:
    """``docker run --network host IMAGE`` listening on a free 127.0.0.1 port; removed afterwards.

    Its gRPC listener is on 127.0.0.1:``grpc_port`` when one is given, and off otherwise.
    """
    from quayside.loadtesting.target import wait_ready

    port = free_port()
    env = {"PORT": str(port), "GRPC_PORT": str(grpc_port or 0), "HOST": "127.0.0.1", "MODEL_NAME": model_name}
    if model_version is not None:
        env["MODEL_VERSION"] = model_version
    command = ["docker", "run", "--rm", "-d", "--network", "host"]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    try:
        started = subprocess.run([*command, image], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        raise UsageError("--image needs the docker command line, and it is not installed") from None
    if started.returncode != 0:
        raise UsageError(f"docker run {image} failed: {started.stderr.strip()}")
    container = started.stdout.strip()
    try:
        wait_ready(f"http://127.0.0.1:{port}")
        yield f"http://127.0.0.1:{port}"
    finally:
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, check=False)


@dataclass(frozen=True)
class PackageInputs:
    """What a load test needs from a package: where it is, its serving name, inputs, example and digest."""

    path: Path
    name: str
    schema: Any
    example: Any
    digest: str

    def tested(self, **where: str) -> dict[str, Any]:
        """The report's ``tested`` field for this package (served here, or as ``where`` says)."""
        return {"kind": "package", "package_digest": self.digest} | where


def package_inputs(model: str, *, settings: Settings | None = None) -> PackageInputs:
    """A package's directory, serving name, input schema, decoded input example (or None) and digest."""
    from quayside.packager.example import decode_example
    from quayside.packager.manifest import PackageReader

    path, registered_name, _ = resolve_registered(model, settings=settings)
    manifest = PackageReader.open(path).manifest
    schema = manifest.signature.inputs
    example = None
    if manifest.input_example is not None:
        example = decode_example(manifest.input_example, schema)
    return PackageInputs(path, registered_name or manifest.name, schema, example, manifest.digest())


def image_identity(image: str) -> dict[str, Any]:
    """The report's ``tested`` field for a built image: its reference, id, repository digest and package digest.

    The package digest is the image's own label (written by ``quayside build``); an image
    without one cannot be bound to a registered version.
    """
    import json

    from quayside.packager.labels import MODEL_DIGEST_LABEL

    try:
        found = subprocess.run(
            ["docker", "image", "inspect", "--format", "{{json .}}", image],
            capture_output=True,
            text=True,
            check=False,
        )
    except FileNotFoundError:
        raise UsageError("--image needs the docker command line, and it is not installed") from None
    if found.returncode != 0:
        raise UsageError(f"no image '{image}' in the local Docker engine: build it with quayside build")
    details = json.loads(found.stdout)
    labels = (details.get("Config") or {}).get("Labels") or {}
    digest = labels.get(MODEL_DIGEST_LABEL)
    if not digest:
        raise UsageError(f"image '{image}' has no {MODEL_DIGEST_LABEL} label: build it with quayside build")
    tested = {"kind": "image", "package_digest": digest, "image": image, "image_id": details.get("Id")}
    repo_digests = details.get("RepoDigests") or []
    if repo_digests:
        tested["repo_digest"] = repo_digests[0]
    return tested


@dataclass(frozen=True)
class LoadTestRun:
    """A finished load test: its report (with the verdict, when objectives were given) and where it was written."""

    report: dict[str, Any]
    verdict: Verdict | None
    json_path: Path
    html_path: Path

    def html(self) -> str:
        return self.html_path.read_text()


def run_and_report(
    *,
    base_url: str,
    model_name: str,
    schema: Any,
    example: Any,
    protocol: str,
    rows: int,
    options: LoadOptions,
    objectives: tuple[Objective, ...],
    out_dir: Path,
    report_id: str,
    tested: dict[str, Any] | None = None,
    grpc_target: str | None = None,
    console: Console | None = None,
) -> LoadTestRun:
    """Generate payloads, load the server, build and write the report, judged against ``objectives``.

    ``tested`` says what was under load (see :meth:`PackageInputs.tested`, :func:`image_identity`);
    with ``protocol="grpc"`` the load goes to ``grpc_target`` (HOST:PORT; default: ``base_url``'s
    host on port 8081) and the report's target is that address. ``console`` shows the live
    progress panel (default: a console on stderr).
    """
    from quayside.loadtesting.payloads import build_payloads
    from quayside.loadtesting.report import build_report, summary_for_slo, with_verdict, write_report
    from quayside.loadtesting.runner import run_load
    from quayside.loadtesting.target import default_grpc_target
    from quayside.slo import evaluate

    payloads = build_payloads(schema, example, protocol=protocol, model_name=model_name, rows=rows)  # type: ignore[arg-type]
    target = base_url
    if protocol == "grpc":
        target = grpc_target or default_grpc_target(base_url)
    result = run_load(target, payloads, options, console=console)
    report = build_report(result, model=model_name, report_id=report_id, tested=tested)
    verdict = evaluate(objectives, summary_for_slo(report)) if objectives else None
    if verdict is not None:
        report = with_verdict(report, verdict)
    json_path, html_path = write_report(report, out_dir)
    return LoadTestRun(report, verdict, json_path, html_path)


def in_cluster_manifests(
    *,
    host: str,
    model_name: str,
    schema: Any,
    example: Any,
    protocol: str,
    rows: int,
    options: LoadOptions,
    namespace: str = "default",
    name: str | None = None,
    image: str | None = None,
) -> list[dict[str, Any]]:
    """Manifests that run this load test inside a cluster: Locust's master as a Job, ``options.workers`` workers.

    ``host`` is the model server's base URL as the cluster resolves it; the request bodies are
    generated here, from the signature, as for a local run. HTTP protocols only: the pods run
    Locust's own image, which has no gRPC client.
    """
    from quayside.loadtesting.payloads import build_payloads
    from quayside.packager.k8s.loadtest import (
        DEFAULT_LOCUST_IMAGE,
        LoadTestSpec,
        default_loadtest_name,
        render_loadtest,
    )

    if protocol == "grpc":
        raise UsageError(
            "--target-kubernetes runs Locust's own image, which has no gRPC client: use --protocol v2 or invocations"
        )
    payloads = build_payloads(schema, example, protocol=protocol, model_name=model_name, rows=rows)  # type: ignore[arg-type]
    spec = LoadTestSpec(
        name=name or default_loadtest_name(model_name),
        host=host,
        model_name=model_name,
        path=payloads.path,
        content_type=payloads.content_type,
        bodies=tuple(body.decode() for body in payloads.bodies),
        users=options.users,
        spawn_rate=options.spawn_rate,
        duration_s=options.duration_s,
        workers=options.workers,
        namespace=namespace,
        image=image or DEFAULT_LOCUST_IMAGE,
    )
    return render_loadtest(spec)


def register_report(client: RegistryClient, name: str, version: int, run: LoadTestRun) -> LoadTestReport:
    """Store a finished run's report with a registered version; the registry's record carries its own verdict."""
    if not (run.report.get("tested") or {}).get("package_digest"):
        raise UsageError("this load test does not say which package it tested, so it cannot be registered")
    return client.add_loadtest_report(name, version, run.report, run.html())
