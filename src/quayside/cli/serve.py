"""``quayside serve MODEL [MODEL ...]``: serve models over REST (V2 and ``/invocations``) and gRPC until stopped."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, styled
from quayside.compose.following import current_version
from quayside.compose.models import resolve_registered
from quayside.errors import UsageError
from quayside.hosts import ALLOWED_HOSTS_ENV, parse_allowed_hosts
from quayside.packager.package import RUNTIMES, runtime_choices
from quayside.serving.auth import AUTH_TOKEN_FILE_ENV, access_line, read_token_file
from quayside.serving.options import DEFAULT_MAX_BODY_BYTES, MIB, ServeOptions, grpc_line, max_body_bytes


def parse_model_argument(argument: str) -> tuple[str | None, str]:
    """``NAME=MODEL`` to (NAME, MODEL); a plain path or URI to (None, it)."""
    name, sep, model = argument.partition("=")
    if not sep or "/" in name or ":" in name:
        return None, argument
    if not name or not model:
        raise UsageError(f"'{argument}': write NAME=MODEL, with both a name and a path or URI")
    return name, model


def serve(
    model: Annotated[
        list[str],
        typer.Argument(
            help="Model package directories or model URIs (models:/NAME@ALIAS, models:/NAME/VERSION|STAGE, "
            "runs:/ID/PATH), one or more; NAME=MODEL serves one under another name.",
            show_default=False,
        ),
    ],
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0 for all).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.", min=1, max=65535)] = 8080,
    grpc_port: Annotated[
        int,
        typer.Option(
            help="Port of the gRPC Open Inference Protocol (KServe's GRPCInferenceService, as Triton and "
            "KServe clients call it), on the same host. 0: no gRPC.",
            min=0,
            max=65535,
        ),
    ] = ServeOptions.grpc_port,
    workers: Annotated[
        int, typer.Option(help="Server processes; each loads the model and gets cores/N ORT threads.", min=1)
    ] = 1,
    batching: Annotated[
        bool, typer.Option(help="Merge concurrent requests into one model call (adaptive batching).")
    ] = True,
    ort_spinning: Annotated[
        bool,
        typer.Option(
            help="Keep ONNX Runtime's idle threads spinning: faster answers at low concurrency, but a "
            "core stays busy, which under load slows the server (off by default)."
        ),
    ] = ServeOptions.ort_spinning,
    max_batch_size: Annotated[
        int,
        typer.Option(help="Most rows merged into one model call; a larger request runs on its own.", min=1),
    ] = ServeOptions.max_batch_size,
    max_batch_latency_ms: Annotated[
        float,
        typer.Option(
            help="Longest a batch waits for requests still being received (it never waits otherwise).", min=0
        ),
    ] = ServeOptions.max_batch_latency_ms,
    inline_below_us: Annotated[
        float,
        typer.Option(
            help="Run model calls measured to take less than this many µs on the event loop, not in a "
            "thread (cheaper than the round trip to one). 0: always a thread.",
            min=0,
        ),
    ] = ServeOptions.inline_below_us,
    max_body_mb: Annotated[
        float, typer.Option(help="Largest request body in MiB; larger ones get 413.", min=0.001)
    ] = DEFAULT_MAX_BODY_BYTES / MIB,
    grace_period: Annotated[
        float, typer.Option(help="Seconds in-flight requests get to finish after SIGTERM.", min=0)
    ] = ServeOptions.grace_period_s,
    runtime: Annotated[
        str,
        typer.Option(help=f"{runtime_choices()}; auto is ONNX Runtime when the package is ONNX-servable."),
    ] = ServeOptions.runtime,
    trust: Annotated[
        bool,
        typer.Option("--trust", help="Allow a pickled native model (loading it runs code from the package)."),
    ] = False,
    model_control: Annotated[
        bool,
        typer.Option(
            "--model-control",
            help="Let callers load and unload models (POST /v2/repository/models/NAME/load|unload and "
            "gRPC's RepositoryModelLoad/Unload). Off: those answer 403 (a load reads any path or URI "
            "this server can reach); the index is always answered.",
        ),
    ] = False,
    follow_interval: Annotated[
        float,
        typer.Option(
            help="Seconds between asking the registry which version a served alias, stage or 'latest' "
            "names (models:/NAME@ALIAS): when it moves, the new version is loaded and warmed beside the "
            "old, traffic switches, the old one drains; a version that fails to load leaves the old one "
            "serving. 0: serve the version found at start.",
            min=0,
        ),
    ] = ServeOptions.follow_interval_s,
    memory_budget_mb: Annotated[
        float | None,
        typer.Option(
            help="Most the loaded models may hold together, in MB (each counts the model files its "
            "runtime loads). Loading past it unloads the least recently used idle model, which loads "
            "again (and warms) on its next request. Default: no budget.",
            min=0.001,
            show_default=False,
        ),
    ] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="No access-log line per request.")] = False,
    allowed_hosts: Annotated[
        str | None,
        typer.Option(
            envvar=ALLOWED_HOSTS_ENV,
            help="Host names the server answers to, comma-separated (any port; '*' for any); other Host "
            "headers get 400 (DNS rebinding). The loopback names are always answered. Default: only them "
            "bound to loopback; the address too bound to another; any bound to 0.0.0.0 or :: (as images "
            "are, so that probes by pod IP and clients by Service name work).",
            show_default=False,
        ),
    ] = None,
    auth_token_file: Annotated[
        Path | None,
        typer.Option(
            envvar=AUTH_TOKEN_FILE_ENV,
            help="File holding a token (read once at start) that every route but the health, readiness "
            "and /metrics ones needs as 'Authorization: Bearer <token>'.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve one or more models over REST and gRPC until SIGTERM or Ctrl-C.

    Endpoints: V2 inference at /v2/models/NAME/infer and .../versions/VERSION/infer, MLflow-style
    /invocations (JSON or CSV; ?model=NAME when several models are served), the model
    repository extension at /v2/repository/..., /v2/health/live and /ready, /metrics (Prometheus) and /docs
    (OpenAPI, generated from the model's signature); on --grpc-port, KServe's
    inference.GRPCInferenceService and grpc.health.v1. Every request is checked
    against the signature. On SIGTERM the server turns unready, finishes
    in-flight requests within --grace-period, and exits 0.
    """
    from quayside.serving.server import ModelSpec, load_spec
    from quayside.serving.server import serve as run_server

    if runtime not in RUNTIMES:
        raise UsageError(f"--runtime must be {runtime_choices()}, not '{runtime}'")
    options = ServeOptions(
        host=host,
        port=port,
        grpc_port=grpc_port,
        workers=workers,
        batching=batching,
        ort_spinning=ort_spinning,
        max_batch_size=max_batch_size,
        max_batch_latency_ms=max_batch_latency_ms,
        inline_below_us=inline_below_us,
        max_body_bytes=max_body_bytes(max_body_mb),
        grace_period_s=grace_period,
        quiet=quiet,
        trust=trust,
        model_control=model_control,
        memory_budget_mb=memory_budget_mb,
        follow_interval_s=follow_interval,
        runtime=runtime,  # type: ignore[arg-type]  # checked above
        allowed_hosts=parse_allowed_hosts(allowed_hosts),
        auth_token=read_token_file(auth_token_file) if auth_token_file else None,
    )
    specs = []
    for argument in model:
        name, uri = parse_model_argument(argument)
        path, registered_name, registered_version = resolve_registered(uri)
        specs.append(ModelSpec(str(path), name or registered_name, registered_version, uri))
    if len(specs) == 1:
        options = replace(options, model_name=specs[0].name, model_version=specs[0].version)
    # Load here first (also with several workers): a package that cannot load is one
    # error line now, not a traceback in every worker.
    loaded = [load_spec(spec, options) for spec in specs]
    shown: list[str | tuple[str, str]] = []
    for runtime in loaded:
        shown += [", "] if shown else []
        shown += [(runtime.name, "bold"), f" ({runtime.platform})"]
    err.print(
        styled(
            "serving ",
            *shown,
            f" on http://{host}:{port}{grpc_line(options)} "
            f"with {workers} worker{'s' if workers > 1 else ''} — docs at /docs, metrics at /metrics",
        )
    )
    err.print(access_line(options))
    run_server(
        specs, options, loaded if workers == 1 else None, resolver=resolve_registered, probe=current_version
    )
