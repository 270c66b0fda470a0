"""Model packages of several input shapes, real servers for them, and the CLI run as a subprocess.

Load tests run through ``python -m quayside loadtest`` in a child process: Locust
monkey-patches the standard library with gevent on import, which must not leak
into the pytest process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder, StandardScaler

import quayside
from tests.serving.conftest import RunningServer, start_server


@pytest.fixture(scope="session")
def loadtest_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("loadtesting")


@pytest.fixture(scope="session")
def mixed_table_package(loadtest_dir) -> Path:
    """A classifier on a table of float32, int64, string and bool columns, converted to ONNX."""
    rng = np.random.default_rng(0)
    X = pd.DataFrame(
        {
            "age": rng.uniform(18, 80, 200).astype("float32"),
            "visits": rng.integers(0, 20, 200),
            "plan": rng.choice(["basic", "pro", "team"], 200),
            "active": rng.choice([True, False], 200),
        }
    )
    y = ((X["age"] > 40) ^ X["active"]).astype(int)
    columns = ColumnTransformer(
        [
            ("numbers", StandardScaler(), ["age", "visits"]),
            ("plan", OneHotEncoder(), ["plan"]),
            ("flags", "passthrough", ["active"]),
        ]
    )
    pipeline = make_pipeline(columns, LogisticRegression()).fit(X, y)
    path = loadtest_dir / "members"
    quayside.save_model(pipeline, path, input_example=X.head(30), to_onnx=True, name="members")
    return path


@pytest.fixture(scope="session")
def tensor_input_package(loadtest_dir, diabetes_regressor, diabetes) -> Path:
    """A regressor on one float tensor of shape (-1, 10), converted to ONNX."""
    X, _ = diabetes
    path = loadtest_dir / "diabetes"
    quayside.save_model(diabetes_regressor, path, input_example=X[:20], to_onnx=True, name="diabetes")
    return path


@pytest.fixture(scope="module")
def mixed_table_server(mixed_table_package, tmp_path_factory) -> Iterator[RunningServer]:
    server = start_server(mixed_table_package, "--quiet", log_dir=tmp_path_factory.mktemp("log"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tensor_input_server(tensor_input_package, tmp_path_factory) -> Iterator[RunningServer]:
    server = start_server(tensor_input_package, "--quiet", log_dir=tmp_path_factory.mktemp("log"))
    yield server
    server.stop()


def run_cli(
    *args: str, env: dict[str, str] | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """``python -m quayside ARGS`` in a child process (gevent's patching stays there)."""
    return subprocess.run(
        [sys.executable, "-m", "quayside", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "COLUMNS": "200", **(env or {})},
    )


def read_report(directory: Path) -> dict[str, Any]:
    return json.loads((directory / "report.json").read_text())


@pytest.fixture
def home(tmp_path) -> Path:
    """A fresh QUAYSIDE_HOME (its SQLite store and artifact root) for one test."""
    return tmp_path / "home"


@pytest.fixture
def staged(home, mixed_table_package) -> Any:
    """'members' v1 in production and v2 in staging, with an alias on v2, in ``home``."""
    from quayside.compose.clients import RegistryClient
    from quayside.config import Settings

    client = RegistryClient(settings=Settings(home=home))
    client.register_model(str(mixed_table_package), "members")
    client.transition("members", 1, "staging", reason="first")
    # Seeded past the policy (the local user is an admin): these tests are about version 2.
    client.transition("members", 1, "production", reason="seeded", override=True)
    client.register_model(str(mixed_table_package), "members")
    client.transition("members", 2, "staging", reason="looks good")
    client.set_alias("members", "challenger", 2)
    return client


def registry_snapshot(client: Any) -> object:
    """Everything the registry holds of 'members': versions, model, audit history."""
    return (
        [v.to_dict() for v in client.list_versions("members", include_deleted=True)],
        client.get_model("members").to_dict(),
        [e.to_dict() for e in client.history("members")],
    )
