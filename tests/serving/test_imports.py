"""Serving stays slim: importing it pulls in no database, container, load-test or training library."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = (
    "sqlalchemy",
    "alembic",
    "docker",
    "kubernetes",
    "locust",
    "sklearn",
    "torch",
    "xgboost",
    "lightgbm",
    "quayside.tracking",
    "quayside.registry",
    "quayside.cli",
)


def test_importing_the_server_loads_none_of_the_forbidden_modules():
    code = (
        "import sys, quayside.serving.server, quayside.serving.app;"
        f"print(','.join(m for m in {FORBIDDEN!r} if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""


def test_the_grpc_runtime_is_imported_only_when_the_grpc_port_is_on():
    code = (
        "import sys, quayside.serving, quayside.serving.server, quayside.serving.app;"
        "print(','.join(m for m in ('grpc', 'google.protobuf', 'grpc_health') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == ""
