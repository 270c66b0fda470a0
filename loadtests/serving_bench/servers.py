"""How each server is started, probed for readiness and called: one ``ServerSpec`` per server.

Every server binds 127.0.0.1 on a free port, runs the same number of worker
processes, and runs with its per-request access log off unless
``access_log=True`` (Quayside ``--quiet``, uvicorn ``--no-access-log``,
BentoML's ``logging.access.enabled``, MLflow's uvicorn via
``UVICORN_ACCESS_LOG``), so that none of them is timed writing logs the
others skip. Each runs its ONNX Runtime session with its own default threads.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from serving_bench import payloads
from serving_bench.envs import Venv
from serving_bench.models import ServedModel
from serving_bench.paths import BASELINES_DIR, REPO_DIR, WORK_DIR


@dataclass(frozen=True)
class Endpoint:
    """One way to ask a server for predictions."""

    key: str
    path: str
    body: payloads.BodyFormat


@dataclass(frozen=True)
class ReadyProbe:
    """The request that answers 200 once the server can serve (GET a health route, or POST a prediction)."""

    method: str
    path: str
    body: bytes | None = None


@dataclass(frozen=True)
class ServerSpec:
    """A server under test: its command line (given a port), environment, probe and endpoints."""

    key: str
    title: str
    argv: Callable[[int], list[str]]
    ready: ReadyProbe
    endpoints: tuple[Endpoint, ...]
    python: Path
    """The interpreter whose package versions the report lists."""
    packages: tuple[str, ...]
    cwd: Path = REPO_DIR
    env: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    """Headers every request but the readiness probe carries (wrk's ``--header``): a bearer token."""


@dataclass(frozen=True)
class ServerOptions:
    """What every server gets alike."""

    workers: int = 1
    access_log: bool = False


def _environment(bin_dir: Path, extra: Mapping[str, str]) -> dict[str, str]:
    """The caller's environment with ``bin_dir`` first on PATH, no other venv active, no telemetry."""
    env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env.update(PYTHONUNBUFFERED="1", DO_NOT_TRACK="1")
    env.update(extra)
    return env


def quayside_ort_threads(workers: int) -> int:
    """The intra-op threads Quayside gives each worker's ONNX Runtime session (cores / workers)."""
    from quayside.serving.options import ServeOptions

    return ServeOptions(workers=workers).intra_op_threads


def quayside_command() -> list[str]:
    """How to run the ``quayside`` CLI of the venv this benchmark runs in."""
    script = Path(sys.executable).parent / "quayside"
    return [str(script)] if script.exists() else [sys.executable, "-m", "quayside"]


def quayside_serve_available() -> bool:
    """Whether ``quayside serve --help`` works in this venv (the server may not exist yet)."""
    completed = subprocess.run(
        [*quayside_command(), "serve", "--help"], capture_output=True, text=True, check=False
    )
    return completed.returncode == 0


def _one_row(model: ServedModel, body: payloads.BodyFormat) -> bytes:
    return body(model.rows[:1]).encode()


def quayside_spec(
    model: ServedModel,
    options: ServerOptions,
    extra_args: tuple[str, ...] = (),
    *,
    batching: bool = True,
    token: bool = False,
) -> ServerSpec:
    """``quayside serve`` on the model's package: V2 and MLflow-style ``/invocations``.

    ``batching=False`` is the same server with ``--no-batching``, measured beside it in the same run.
    ``token=True`` is the same server with ``--auth-token-file``, every request sending the token,
    measured beside it to show what the check costs.
    """
    if not batching:
        extra_args = (*extra_args, "--no-batching")
    headers: dict[str, str] = {}
    if token:
        secret = secrets.token_urlsafe(32)
        token_file = WORK_DIR / "quayside-token"
        token_file.parent.mkdir(parents=True, exist_ok=True)
        token_file.write_text(secret + "\n")
        extra_args = (*extra_args, "--auth-token-file", str(token_file))
        headers["Authorization"] = f"Bearer {secret}"
    key, title = ("quayside", "Quayside") if batching else ("quayside-nobatch", "Quayside --no-batching")
    if token:
        key, title = f"{key}-token", f"{title} --auth-token-file"

    def argv(port: int) -> list[str]:
        quiet = [] if options.access_log else ["--quiet"]
        # REST only: the benchmark measures REST, and servers started side by side would all
        # want the default gRPC port (loadtests/grpc_benchmark.py measures gRPC).
        return [
            *quayside_command(), "serve", str(model.package_dir), "--host", "127.0.0.1",
            "--port", str(port), "--grpc-port", "0", "--workers", str(options.workers), *quiet, *extra_args,
        ]  # fmt: skip

    return ServerSpec(
        key=key,
        title=title,
        argv=argv,
        ready=ReadyProbe("GET", "/v2/health/ready"),
        endpoints=(
            Endpoint("v2", f"/v2/models/{model.name}/infer", payloads.v2_body(model.input_name)),
            Endpoint("invocations", "/invocations", payloads.inputs_body),
        ),
        python=Path(sys.executable),
        packages=(
            "quayside",
            "fastapi",
            "uvicorn",
            "uvloop",
            "httptools",
            "pydantic",
            "orjson",
            "onnxruntime",
            "numpy",
        ),
        env=_environment(Path(sys.executable).parent, {}),
        headers=headers,
    )


def handwritten_spec(
    model: ServedModel, options: ServerOptions, venv: Venv, *, tuned: bool = False
) -> ServerSpec:
    """(a) loadtests/baselines/handwritten_app.py under ``uvicorn[standard]``.

    ``tuned`` gives its ONNX Runtime session Quayside's settings (cores / workers
    intra-op threads, no spinning) instead of ORT's defaults.
    """
    env = {"BENCH_ONNX_PATH": str(model.onnx_path)}
    if tuned:
        env["BENCH_ORT_THREADS"] = str(quayside_ort_threads(options.workers))

    def argv(port: int) -> list[str]:
        access = "--access-log" if options.access_log else "--no-access-log"
        return [
            str(venv.bin("uvicorn")), "handwritten_app:app", "--host", "127.0.0.1", "--port", str(port),
            "--workers", str(options.workers), access,
        ]  # fmt: skip

    return ServerSpec(
        key="handwritten-tuned" if tuned else "handwritten",
        title="(a′) hand-written, ORT tuned like Quayside" if tuned else "(a) hand-written FastAPI + ORT",
        argv=argv,
        ready=ReadyProbe("POST", "/predict", _one_row(model, payloads.rows_body)),
        endpoints=(Endpoint("predict", "/predict", payloads.rows_body),),
        python=venv.python,
        packages=venv.reported_packages,
        cwd=BASELINES_DIR,
        env=_environment(venv.bin_dir, env),
    )


def bentoml_spec(model: ServedModel, options: ServerOptions, venv: Venv) -> ServerSpec:
    """(b) loadtests/baselines/bentoml_service.py under ``bentoml serve``."""

    def argv(port: int) -> list[str]:
        return [
            str(venv.bin("bentoml")), "serve", "bentoml_service:OnnxModel", "--working-dir", str(BASELINES_DIR),
            "--host", "127.0.0.1", "--port", str(port),
        ]  # fmt: skip

    env = {
        "BENCH_ONNX_PATH": str(model.onnx_path),
        "BENCH_WORKERS": str(options.workers),
        "BENCH_ACCESS_LOG": "1" if options.access_log else "0",
        "BENTOML_DO_NOT_TRACK": "True",
        "BENTOML_HOME": str(WORK_DIR / "bentoml-home"),
    }
    return ServerSpec(
        key="bentoml",
        title="(b) BentoML + ORT",
        argv=argv,
        ready=ReadyProbe("GET", "/readyz"),
        endpoints=(Endpoint("predict", "/predict", payloads.rows_body),),
        python=venv.python,
        packages=venv.reported_packages,
        cwd=BASELINES_DIR,
        env=_environment(venv.bin_dir, env),
    )


def mlflow_spec(model: ServedModel, options: ServerOptions, venv: Venv) -> ServerSpec:
    """(c) ``mlflow models serve --env-manager local`` on the scikit-learn model."""
    if model.mlflow_dir is None:
        raise ValueError("the model was built without its MLflow form")
    mlflow_dir = model.mlflow_dir

    def argv(port: int) -> list[str]:
        return [
            str(venv.bin("mlflow")), "models", "serve", "-m", str(mlflow_dir), "--env-manager", "local",
            "-h", "127.0.0.1", "-p", str(port), "-w", str(options.workers),
        ]  # fmt: skip

    env = {
        "MLFLOW_DISABLE_TELEMETRY": "true",
        "UVICORN_ACCESS_LOG": "true" if options.access_log else "false",
    }
    return ServerSpec(
        key="mlflow",
        title="(c) mlflow models serve (sklearn)",
        argv=argv,
        ready=ReadyProbe("GET", "/ping"),
        endpoints=(Endpoint("invocations", "/invocations", payloads.inputs_body),),
        python=venv.python,
        packages=venv.reported_packages,
        env=_environment(venv.bin_dir, env),
    )
