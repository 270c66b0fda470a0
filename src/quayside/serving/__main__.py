"""``python -m quayside.serving PACKAGE``: the serving entry point of container images.

It imports serving and nothing else of Quayside (no CLI framework, no database
driver), so an image holds only the serving runtime. ``PORT``, ``GRPC_PORT``,
``WORKERS`` and ``HOST`` in the environment set the defaults, as container
platforms expect (``GRPC_PORT=0``: no gRPC).
Every flag it shares with ``quayside serve`` has the same name and meaning.

An image built from a moving URI (``models:/churn@champion``) names it in ``MODEL_SOURCE``
and serves the version it carries from its first second; with ``QUAYSIDE_REGISTRY_URI`` set it
also follows the URI (:mod:`quayside.serving.registry_http`): when the alias moves, the new
version is downloaded, verified, loaded beside the old one, and takes over.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from quayside.errors import QuaysideError
from quayside.hosts import ALLOWED_HOSTS_ENV, parse_allowed_hosts
from quayside.serving.auth import AUTH_TOKEN_FILE_ENV, access_line, read_token_file
from quayside.serving.options import MIB, ServeOptions, grpc_line, max_body_bytes
from quayside.serving.registry_http import HttpRegistry, is_fixed, parse_moving_uri

REGISTRY_URI_ENV = "QUAYSIDE_REGISTRY_URI"
REGISTRY_TOKEN_ENV = "QUAYSIDE_TOKEN"
MODEL_CACHE_DIR = "quayside-models"
"""Under the temporary directory: versions downloaded while following, one folder per digest."""
REUSE_PORT_ENV = "QUAYSIDE_REUSE_PORT"
"""Set to 1 by ``quayside deploy --target docker``: the next container binds the same port beside this one."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise SystemExit(f"error: {name} must be a whole number, not '{value}'")
    return int(value)


def _env_float(name: str, default: float | None = None) -> float | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"error: {name} must be a number, not '{value}'") from None


@dataclass(frozen=True)
class Entry:
    """What the entry point was told: the package, the options, and what to follow."""

    package: str
    options: ServeOptions
    source: str | None = None
    registry_uri: str | None = None


def parse_options(argv: list[str]) -> tuple[str, ServeOptions]:
    """The package and the serving options of a command line."""
    entry = parse_entry(argv)
    return entry.package, entry.options


def parse_entry(argv: list[str]) -> Entry:
    defaults = ServeOptions()
    parser = argparse.ArgumentParser(prog="python -m quayside.serving", description=__doc__.splitlines()[0])
    parser.add_argument("package", help="model package directory")
    parser.add_argument("--host", default=os.environ.get("HOST", "0.0.0.0"))
    parser.add_argument("--port", type=int, default=_env_int("PORT", defaults.port))
    parser.add_argument(
        "--grpc-port",
        type=int,
        default=_env_int("GRPC_PORT", defaults.grpc_port),
        help="port of the gRPC Open Inference Protocol (also GRPC_PORT); 0: no gRPC",
    )
    parser.add_argument("--workers", type=int, default=_env_int("WORKERS", defaults.workers))
    parser.add_argument("--batching", action=argparse.BooleanOptionalAction, default=defaults.batching)
    parser.add_argument(
        "--ort-spinning",
        action=argparse.BooleanOptionalAction,
        default=os.environ.get("ORT_SPINNING") == "1" or defaults.ort_spinning,
        help="keep ONNX Runtime's idle threads spinning (also ORT_SPINNING=1): faster at low concurrency, "
        "a busy core under load",
    )
    parser.add_argument("--max-batch-size", type=int, default=defaults.max_batch_size)
    parser.add_argument("--max-batch-latency-ms", type=float, default=defaults.max_batch_latency_ms)
    parser.add_argument("--inline-below-us", type=float, default=defaults.inline_below_us)
    parser.add_argument("--max-body-mb", type=float, default=defaults.max_body_bytes / MIB)
    parser.add_argument("--grace-period", type=float, default=defaults.grace_period_s)
    parser.add_argument("--model-name", default=os.environ.get("MODEL_NAME") or None)
    parser.add_argument("--model-version", default=os.environ.get("MODEL_VERSION") or None)
    parser.add_argument("--quiet", "-q", action="store_true")
    parser.add_argument(
        "--trust",
        action="store_true",
        help="load a pickled native model (its code runs): set by `quayside build --trust`",
    )
    parser.add_argument(
        "--model-control",
        action="store_true",
        help="let callers load and unload models through the repository extension (REST and gRPC)",
    )
    parser.add_argument(
        "--source",
        default=os.environ.get("MODEL_SOURCE") or None,
        help="the model URI the package was built from (also MODEL_SOURCE); a moving one "
        "(models:/NAME@ALIAS, a stage, latest) is followed when --registry-uri is set",
    )
    parser.add_argument(
        "--registry-uri",
        default=os.environ.get(REGISTRY_URI_ENV) or None,
        help=f"http(s)://host:port of the quayside server holding the registry (also {REGISTRY_URI_ENV}); "
        f"its API token comes from {REGISTRY_TOKEN_ENV}",
    )
    parser.add_argument(
        "--follow-interval",
        type=float,
        default=_env_float("FOLLOW_INTERVAL", defaults.follow_interval_s),
        help="seconds between asking the registry which version --source names (also FOLLOW_INTERVAL); 0: never",
    )
    parser.add_argument(
        "--memory-budget-mb",
        type=float,
        default=_env_float("MEMORY_BUDGET_MB"),
        help="most the loaded models may hold together, in MB (also MEMORY_BUDGET_MB); loading past it "
        "unloads the least recently used idle model until its next request",
    )
    parser.add_argument(
        "--reuse-port",
        action="store_true",
        default=os.environ.get(REUSE_PORT_ENV) == "1",
        help=f"share the port with a successor (also {REUSE_PORT_ENV}=1)",
    )
    parser.add_argument(
        "--allowed-hosts",
        default=os.environ.get(ALLOWED_HOSTS_ENV) or None,
        help=f"Host names answered, comma-separated ('*': any; also {ALLOWED_HOSTS_ENV}); default: any when "
        "bound to 0.0.0.0 (as in an image: probes come by pod IP, clients by Service name), else the "
        "bound address and the loopback names; the loopback names are always answered",
    )
    parser.add_argument(
        "--auth-token-file",
        default=os.environ.get(AUTH_TOKEN_FILE_ENV) or None,
        help=f"file with the bearer token every route but health, readiness and /metrics needs (also {AUTH_TOKEN_FILE_ENV})",
    )
    args = parser.parse_args(argv)
    options = ServeOptions(
        host=args.host,
        port=args.port,
        grpc_port=args.grpc_port,
        workers=args.workers,
        batching=args.batching,
        ort_spinning=args.ort_spinning,
        max_batch_size=args.max_batch_size,
        max_batch_latency_ms=args.max_batch_latency_ms,
        inline_below_us=args.inline_below_us,
        max_body_bytes=max_body_bytes(args.max_body_mb),
        grace_period_s=args.grace_period,
        quiet=args.quiet,
        trust=args.trust,
        model_control=args.model_control,
        memory_budget_mb=args.memory_budget_mb,
        follow_interval_s=args.follow_interval,
        model_name=args.model_name,
        reuse_port=args.reuse_port,
        model_version=args.model_version,
        allowed_hosts=parse_allowed_hosts(args.allowed_hosts),
        auth_token=read_token_file(args.auth_token_file) if args.auth_token_file else None,
    )
    return Entry(args.package, options, args.source, args.registry_uri)


def main(argv: list[str] | None = None) -> None:
    try:
        entry = parse_entry(sys.argv[1:] if argv is None else argv)
        package, options = entry.package, entry.options
        from quayside.serving.server import ModelSpec, load_for_serving, serve

        runtime = load_for_serving(package, options)
        print(
            f"serving {runtime.name} ({runtime.platform}) on {options.host}:{options.port}{grpc_line(options)}",
            file=sys.stderr,
        )
        print(access_line(options), file=sys.stderr)
        registry = _registry(entry)
        spec = ModelSpec(package, options.model_name, options.model_version, entry.source or package)
        if registry is not None:
            print(
                f"following {entry.source} on {entry.registry_uri} every {options.follow_interval_s:g} s",
                file=sys.stderr,
            )
        serve(
            [spec],
            options,
            runtime if options.workers == 1 else None,
            resolver=registry.resolve if registry is not None else None,
            probe=registry.current_version if registry is not None else None,
        )
    except QuaysideError as e:
        raise SystemExit(f"error: {e.message}") from None


def _registry(entry: Entry) -> HttpRegistry | None:
    """The registry to follow ``entry.source`` on; None when there is nothing to follow."""
    if not entry.source or not entry.registry_uri or not entry.options.follow_interval_s:
        return None
    if parse_moving_uri(entry.source) is None or is_fixed(entry.source):
        return None
    return HttpRegistry(
        entry.registry_uri,
        cache_dir=Path(tempfile.gettempdir()) / MODEL_CACHE_DIR,
        token=os.environ.get(REGISTRY_TOKEN_ENV) or None,
    )


if __name__ == "__main__":
    main()
