"""``python -m quayside.serving PACKAGE``: the serving entry point of container images.

It imports serving and nothing else of Quayside (no CLI framework, no database
driver), so an image holds only the serving runtime. ``PORT``, ``GRPC_PORT``,
``WORKERS`` and ``HOST`` in the environment set the defaults, as container
platforms expect (``GRPC_PORT=0``: no gRPC).
Every flag it shares with ``quayside serve`` has the same name and meaning.
"""

from __future__ import annotations

import argparse
import os
import sys

from quayside.errors import QuaysideError
from quayside.hosts import ALLOWED_HOSTS_ENV, parse_allowed_hosts
from quayside.serving.auth import AUTH_TOKEN_FILE_ENV, access_line, read_token_file
from quayside.serving.options import MIB, ServeOptions, grpc_line, max_body_bytes

REUSE_PORT_ENV = "QUAYSIDE_REUSE_PORT"
"""Set to 1 by ``quayside deploy --target docker``: the next container binds the same port beside this one."""


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    if not value.isdigit():
        raise SystemExit(f"error: {name} must be a whole number, not '{value}'")
    return int(value)


def _env_float(name: str) -> float | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return float(value)
    except ValueError:
        raise SystemExit(f"error: {name} must be a number, not '{value}'") from None


def parse_options(argv: list[str]) -> tuple[str, ServeOptions]:
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
        max_batch_size=args.max_batch_size,
        max_batch_latency_ms=args.max_batch_latency_ms,
        inline_below_us=args.inline_below_us,
        max_body_bytes=max_body_bytes(args.max_body_mb),
        grace_period_s=args.grace_period,
        quiet=args.quiet,
        trust=args.trust,
        model_control=args.model_control,
        memory_budget_mb=args.memory_budget_mb,
        model_name=args.model_name,
        reuse_port=args.reuse_port,
        model_version=args.model_version,
        allowed_hosts=parse_allowed_hosts(args.allowed_hosts),
        auth_token=read_token_file(args.auth_token_file) if args.auth_token_file else None,
    )
    return args.package, options


def main(argv: list[str] | None = None) -> None:
    try:
        package, options = parse_options(sys.argv[1:] if argv is None else argv)
        from quayside.serving.server import load_for_serving, serve

        runtime = load_for_serving(package, options)
        print(
            f"serving {runtime.name} ({runtime.platform}) on {options.host}:{options.port}{grpc_line(options)}",
            file=sys.stderr,
        )
        print(access_line(options), file=sys.stderr)
        serve(package, options, runtime if options.workers == 1 else None)
    except QuaysideError as e:
        raise SystemExit(f"error: {e.message}") from None


if __name__ == "__main__":
    main()
