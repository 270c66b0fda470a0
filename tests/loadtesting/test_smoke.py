"""The smoke load test in loadtests/ (about 10 s against a real server) passes, and fails on request errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.loadtesting.conftest import run_cli

ROOT = Path(__file__).resolve().parents[2]


def _smoke(package: Path, out: Path, duration: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, str(ROOT / "loadtests" / "smoke.py"), str(package), "--duration", duration, "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_the_smoke_load_test_runs_10_s_without_a_single_request_error(mixed_table_package, tmp_path):
    result = _smoke(mixed_table_package, tmp_path, "10s")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["failures"] == 0 and report["summary"]["requests"] > 100


def test_a_load_test_with_request_errors_fails_and_reports_them_by_type(
    tensor_input_server, mixed_table_package, tmp_path
):
    # Rows of another model's signature: every request is a 422 from a healthy server.
    result = run_cli(
        "loadtest", f"{tensor_input_server.url}/v2/models/diabetes", "--model", str(mixed_table_package),
        "--duration", "2s", "--users", "2", "--slo", "error_rate<=0", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["summary"]["failures"] == report["summary"]["requests"] > 0
    assert report["errors"][0]["type"].startswith("HTTP 4")
