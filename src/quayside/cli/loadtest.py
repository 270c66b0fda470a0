"""``quayside loadtest TARGET``: load a running server or a model served here, report, judge against SLOs.

TARGET is a server URL (``http://HOST:PORT/v2/models/NAME``, or the base URL with
``--model-name``/``--model``) or a model package/URI, which is then served on a
free local port for the test and stopped afterwards. Payload rows come from the
model's signature and input example: from ``--model`` (or the MODEL_URI itself)
when given, else from the server's V2 metadata with placeholder ranges.
"""

from __future__ import annotations

import contextlib
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from quayside.cli.console import err, out, styled
from quayside.errors import UsageError

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}
DEFAULT_REPORTS_DIR = Path("loadtest-reports")


def parse_duration(text: str) -> float:
    """``30s``, ``2m``, ``500ms`` or a plain number of seconds."""
    match = _DURATION.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise UsageError(f"--duration '{text}' is not a positive duration like 30s, 2m or 500ms")
    return float(match.group(1)) * _UNITS[match.group(2)]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@contextlib.contextmanager
def served_locally(model: str, *, trust: bool, log_path: Path) -> Iterator[str]:
    """``quayside serve MODEL`` on a free 127.0.0.1 port until the block ends; yields its base URL."""
    from quayside.loadtesting.target import wait_ready

    port = free_port()
    command = [sys.executable, "-m", "quayside", "serve", model, "--host", "127.0.0.1", "--port", str(port)]
    command += ["--quiet", *(["--trust"] if trust else [])]
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    base_url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(base_url, alive=lambda: process.poll() is None)
        yield base_url
    except Exception:
        err.print(
            styled((f"server log ({log_path}):", "dim"), f"\n{log_path.read_text(errors='replace')[-2000:]}")
        )
        raise
    finally:
        _stop(process)


@contextlib.contextmanager
def served_image(image: str, *, model_name: str, model_version: str | None) -> Iterator[str]:
    """``docker run --network host IMAGE`` listening on a free 127.0.0.1 port; removed afterwards."""
    from quayside.loadtesting.target import wait_ready

    port = free_port()
    env = {"PORT": str(port), "HOST": "127.0.0.1", "MODEL_NAME": model_name}
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


def package_inputs(model: str) -> tuple[Path, str, Any, Any]:
    """A package's directory, serving name, input schema and decoded input example (or None)."""
    from quayside.cli.serve import resolve_registered
    from quayside.packager.example import decode_example
    from quayside.packager.manifest import PackageReader

    path, registered_name, _ = resolve_registered(model)
    manifest = PackageReader.open(path).manifest
    schema = manifest.signature.inputs
    example = None
    if manifest.input_example is not None:
        example = decode_example(manifest.input_example, schema)
    return path, registered_name or manifest.name, schema, example


def print_verdict(verdict: Any) -> None:
    table = Table(title="SLO verdict", title_justify="left")
    for column in ("objective", "measured", "required", "result"):
        table.add_column(column)
    for result in verdict.results:
        measured = "-" if result.measured != result.measured else f"{result.measured:.4g}"
        objective = result.objective
        table.add_row(
            objective.metric,
            measured,
            f"{objective.comparison} {objective.threshold:g}",
            styled(("pass", "green")) if result.passed else styled(("FAIL", "red")),
        )
    out.print(table)
    out.print(styled(("all objectives met", "green")) if verdict.passed else styled(("SLO not met", "red")))


def print_summary(report: Mapping[str, Any]) -> None:
    s = report["summary"]

    def ms(key: str) -> str:
        return "-" if s[key] is None else f"{s[key]:.1f}"

    out.print(
        f"{s['requests']} requests, {s['failures']} failures ({s['error_rate']:.2%}), {s['rps']:.1f} req/s; "
        f"latency ms p50 {ms('p50_ms')} p90 {ms('p90_ms')} p95 {ms('p95_ms')} p99 {ms('p99_ms')} max {ms('max_ms')}"
    )
    for error in report["errors"]:
        out.print(styled("  ", (f"{error['count']} × {error['type']}", "red")))


def run_and_report(
    *,
    base_url: str,
    model_name: str,
    schema: Any,
    example: Any,
    protocol: str,
    rows: int,
    options: Any,
    objectives: tuple[Any, ...],
    out_dir: Path,
    report_id: str,
) -> tuple[dict[str, Any], Any, Path, Path]:
    """Generate payloads, load the server, build and write the report; returns it, the verdict and paths."""
    from quayside.loadtesting.payloads import build_payloads
    from quayside.loadtesting.report import build_report, summary_for_slo, with_verdict, write_report
    from quayside.loadtesting.runner import run_load
    from quayside.loadtesting.slo import evaluate

    payloads = build_payloads(schema, example, protocol=protocol, model_name=model_name, rows=rows)  # type: ignore[arg-type]
    result = run_load(base_url, payloads, options, console=err)
    report = build_report(result, model=model_name, report_id=report_id)
    verdict = evaluate(objectives, summary_for_slo(report)) if objectives else None
    if verdict is not None:
        report = with_verdict(report, verdict)
    json_path, html_path = write_report(report, out_dir)
    return report, verdict, json_path, html_path


def loadtest(
    target: Annotated[
        str,
        typer.Argument(
            help="Server URL (http://HOST:PORT/v2/models/NAME) or a model package/URI to serve here.",
            show_default=False,
        ),
    ],
    users: Annotated[int, typer.Option(help="Simulated users, each sending back to back.", min=1)] = 32,
    spawn_rate: Annotated[float, typer.Option(help="Users started per second.", min=0.001)] = 8.0,
    duration: Annotated[str, typer.Option(help="How long to load: 30s, 2m, 500ms.")] = "30s",
    rows: Annotated[int, typer.Option(help="Rows per request.", min=1)] = 1,
    protocol: Annotated[str, typer.Option(help="v2 or invocations.")] = "v2",
    slo: Annotated[
        str | None,
        typer.Option(help="Objectives, e.g. 'p95_ms<=25,p99_ms<=60,error_rate<=0.001,rps>=300'."),
    ] = None,
    out_dir: Annotated[
        Path | None, typer.Option("--out", help="Report directory (default: loadtest-reports/REPORT_ID).")
    ] = None,
    model: Annotated[
        str | None,
        typer.Option(help="With a URL TARGET: the package/URI whose example bounds the payload rows."),
    ] = None,
    model_name: Annotated[
        str | None, typer.Option(help="With a base-URL TARGET: the served model's name.")
    ] = None,
    trust: Annotated[
        bool, typer.Option("--trust", help="Serving a MODEL_URI here: allow a pickled native model.")
    ] = False,
) -> None:
    """Load-test a model server with requests generated from the model's signature; judge SLOs.

    Writes report.json and a self-contained report.html (latency and throughput
    over time). Exits 1 when any --slo objective is not met, 0 otherwise.
    """
    from quayside.loadtesting.payloads import PROTOCOLS
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions
    from quayside.loadtesting.slo import parse_slo

    objectives = parse_slo(slo) if slo is not None else ()
    if protocol not in PROTOCOLS:
        raise UsageError(f"--protocol must be one of {', '.join(PROTOCOLS)}, not '{protocol}'")
    options = LoadOptions(users=users, spawn_rate=spawn_rate, duration_s=parse_duration(duration))
    report_id = new_report_id()
    directory = out_dir or DEFAULT_REPORTS_DIR / report_id
    with contextlib.ExitStack() as stack:
        if target.startswith(("http://", "https://")):
            base_url, name, schema, example = _remote(target, model, model_name)
        else:
            _, name, schema, example = package_inputs(target)
            base_url = stack.enter_context(
                served_locally(target, trust=trust, log_path=directory / "server.log")
            )
        err.print(
            styled(
                "load-testing ", (name, "bold"), f" at {base_url} ({protocol}) for {options.duration_s:g} s"
            )
        )
        report, verdict, json_path, html_path = run_and_report(
            base_url=base_url,
            model_name=name,
            schema=schema,
            example=example,
            protocol=protocol,
            rows=rows,
            options=options,
            objectives=objectives,
            out_dir=directory,
            report_id=report_id,
        )
    print_summary(report)
    out.print(f"report {report_id}: {json_path} and {html_path}")
    if verdict is not None:
        print_verdict(verdict)
        if not verdict.passed:
            raise typer.Exit(1)


def _remote(url: str, model: str | None, model_name: str | None) -> tuple[str, str, Any, Any]:
    from quayside.loadtesting.target import fetch_schema, split_url

    base_url, name = split_url(url)
    name = name or model_name
    if model is not None:
        _, package_name, schema, example = package_inputs(model)
        return base_url, name or package_name, schema, example
    if name is None:
        raise UsageError(
            "name the model: http://HOST:PORT/v2/models/NAME, --model-name NAME or --model PACKAGE"
        )
    return base_url, name, fetch_schema(base_url, name), None
