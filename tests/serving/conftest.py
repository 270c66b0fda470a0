"""Real model packages and real ``quayside serve`` processes on free ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
import pytest

import quayside
from quayside.compose.clients import RegistryClient
from tests.db.fixtures import Server
from tests.serving.registry_versions import NAME, SEEDS, iris, save_forest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class RunningServer:
    """A ``quayside serve`` subprocess and the URL it answers on."""

    process: subprocess.Popen[str]
    url: str
    log_path: Path

    def log(self) -> str:
        return self.log_path.read_text()

    def stop(self, timeout: float = 20) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout)


def v2_error(response: httpx.Response) -> tuple[str, str]:
    """The code and message of a V2 route's error: the Open Inference Protocol's
    ``{"error": "<message>"}``, with Quayside's ``code`` beside it and nothing else."""
    body = response.json()
    assert set(body) == {"error", "code"}, body
    assert isinstance(body["error"], str) and isinstance(body["code"], str), body
    return body["code"], body["error"]


def invocations_error(response: httpx.Response) -> tuple[str, str, str]:
    """The MLflow ``error_code``, Quayside's code and the message of an ``/invocations`` error:
    MLflow's scoring server's ``{"error_code", "message"}``, with ``code`` beside it."""
    body = response.json()
    assert set(body) == {"error_code", "message", "code"}, body
    return body["error_code"], body["code"], body["message"]


def quayside_error(response: httpx.Response) -> tuple[str, str]:
    """The code and message of any other route's error: ``{"error": {"code", "message"}}``."""
    body = response.json()
    assert set(body) == {"error"} and set(body["error"]) == {"code", "message"}, body
    return body["error"]["code"], body["error"]["message"]


def error_of(path: str, response: httpx.Response) -> tuple[str, str]:
    """Quayside's code and the message of an error on ``path``, in the shape that route must answer."""
    if path == "/v2" or path.startswith("/v2/"):
        return v2_error(response)
    if path == "/invocations":
        _, code, message = invocations_error(response)
        return code, message
    return quayside_error(response)


def start_server(
    package: Path | str,
    *args: str,
    log_dir: Path,
    ready_timeout: float = 60,
    env: dict[str, str] | None = None,
) -> RunningServer:
    """Start ``quayside serve`` and wait until its readiness endpoint says yes.

    Without ``--grpc-port`` in ``args`` the server serves REST only (``--grpc-port 0``), so that
    servers of several tests side by side do not contend for the default gRPC port.
    """
    port = free_port()
    if "--grpc-port" not in args:
        args = (*args, "--grpc-port", "0")
    log_path = log_dir / f"server-{port}.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "quayside", "serve", str(package), "--port", str(port), *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1", **(env or {})},
    )
    server = RunningServer(process, f"http://127.0.0.1:{port}", log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{server.log()}")
        try:
            if httpx.get(f"{server.url}/v2/health/ready", timeout=1).status_code == 200:
                return server
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    server.stop()
    raise AssertionError(f"server not ready after {ready_timeout} s:\n{server.log()}")


@pytest.fixture(scope="session")
def serving_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("serving")


@pytest.fixture(scope="session")
def tensor_package(serving_dir, diabetes_regressor, diabetes) -> Path:
    """A regressor on one float tensor input of shape (-1, 10), converted to ONNX."""
    X, _ = diabetes
    path = serving_dir / "diabetes"
    quayside.save_model(diabetes_regressor, path, input_example=X[:20], to_onnx=True, name="diabetes")
    return path


@pytest.fixture(scope="session")
def table_package(serving_dir, mixed_pipeline) -> Path:
    """A classifier on a table of float, int and string columns, converted to ONNX."""
    pipeline, X = mixed_pipeline
    path = serving_dir / "plans"
    quayside.save_model(pipeline, path, input_example=X.head(20), to_onnx=True, name="plans")
    return path


class SlowSum:
    """Sums each row after sleeping: a model slow enough to keep requests in flight."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def predict(self, rows: np.ndarray) -> np.ndarray:
        time.sleep(self.seconds)
        return rows.sum(axis=1)


@pytest.fixture(scope="session")
def slow_package(serving_dir) -> Path:
    """A plain-Python model (needs --trust) that takes 0.5 s per call and returns row sums."""
    path = serving_dir / "slow"
    example = np.arange(12, dtype=np.float64).reshape(4, 3)
    import cloudpickle

    cloudpickle.register_pickle_by_value(sys.modules[__name__])
    try:
        quayside.save_model(SlowSum(0.5), path, input_example=example, name="slow")
    finally:
        cloudpickle.unregister_pickle_by_value(sys.modules[__name__])
    return path


@pytest.fixture(scope="module")
def tensor_server(tensor_package, tmp_path_factory) -> Iterator[RunningServer]:
    server = start_server(
        tensor_package,
        "--max-batch-size",
        "32",
        "--max-body-mb",
        "0.05",
        log_dir=tmp_path_factory.mktemp("log"),
    )
    yield server
    server.stop()


@pytest.fixture(scope="module")
def table_server(table_package, tmp_path_factory) -> Iterator[RunningServer]:
    server = start_server(table_package, log_dir=tmp_path_factory.mktemp("log"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def churn_rows() -> np.ndarray:
    return iris()[0]


@pytest.fixture(scope="module")
def churn_packages(tmp_path_factory) -> dict[int, Path]:
    """Versions 1 and 2 (ONNX forests that disagree on some rows) and 3 (a pickle without ONNX)."""
    root = tmp_path_factory.mktemp("versions")
    paths = {
        version: save_forest(root / f"v{version}", seed=seed, name=NAME) for version, seed in SEEDS.items()
    }
    paths[3] = save_forest(root / "v3", seed=3, name=NAME, onnx=False)
    return paths


@pytest.fixture(scope="module")
def churn_registry(tmp_path_factory, churn_packages) -> Iterator[tuple[Server, RegistryClient]]:
    """A real ``quayside server`` holding the three versions, ``champion`` on version 1."""
    home = tmp_path_factory.mktemp("registry")
    server = Server(
        home, f"sqlite:///{home / 'quayside.db'}", settings={"QUAYSIDE_MAX_ARTIFACT_BYTES": "100000000"}
    )
    server.start()
    client = RegistryClient(server.url)
    for version in sorted(churn_packages):
        assert client.register_model(churn_packages[version], NAME).version == version
    client.set_alias(NAME, "champion", 1)
    yield server, client
    server.stop()
