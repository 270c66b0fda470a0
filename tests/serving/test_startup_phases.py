"""A server tells how long its start took: import, model load and warm-up on /metrics, and once in its log."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from starlette.testclient import TestClient

from quayside.serving.app import create_app
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime
from tests.serving.conftest import free_port

READY_LINE = re.compile(
    r"ready: model 'diabetes' on 127\.0\.0\.1:(?P<port>\d+) in (?P<total>[\d.]+) s "
    r"\(import (?P<import>[\d.]+) s, load (?P<load>[\d.]+) s, warm-up (?P<warmup>[\d.]+) s\)"
)
ENTRY_POINTS = {
    "quayside serve": ["-m", "quayside", "serve"],
    # the image's entry point, with --quiet: it silences the access log, not the readiness line
    "python -m quayside.serving --quiet": ["-m", "quayside.serving", "--host", "127.0.0.1", "--quiet"],
}


def _startup_samples(metrics_text: str) -> tuple[dict[str, float], float]:
    """``quayside_startup_phase_seconds`` by phase, and ``quayside_startup_seconds``."""
    families = {family.name: family for family in text_string_to_metric_families(metrics_text)}
    phases = {s.labels["phase"]: s.value for s in families["quayside_startup_phase_seconds"].samples}
    (total,) = families["quayside_startup_seconds"].samples
    return phases, total.value


def _start(entry_point: list[str], package: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                *entry_point,
                str(package),
                "--port",
                str(port),
                "--grpc-port",
                str(free_port()),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"server exited with {process.returncode}:\n{log_path.read_text()}")
        try:
            if httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200:
                return process, url
        except httpx.TransportError:
            pass
        time.sleep(0.05)
    process.kill()
    raise AssertionError(f"server not ready after 60 s:\n{log_path.read_text()}")


@pytest.mark.parametrize("entry_point", list(ENTRY_POINTS.values()), ids=list(ENTRY_POINTS))
def test_metrics_show_each_startup_phase_and_the_readiness_line_the_same_once(
    tensor_package, tmp_path, entry_point
):
    log_path = tmp_path / "server.log"
    process, url = _start(entry_point, tensor_package, log_path)
    try:
        httpx.post(f"{url}/invocations", json={"inputs": [[0.0] * 10]}).raise_for_status()
        phases, total = _startup_samples(httpx.get(f"{url}/metrics").text)
    finally:
        process.terminate()
        process.wait(20)
    assert set(phases) == {"import", "load", "warmup"}
    assert all(seconds >= 0 for seconds in phases.values()), phases
    assert phases["import"] > 0 and phases["load"] > 0  # Python, the framework and ORT take time
    assert 0 < sum(phases.values()) <= total < 60
    lines = [line for line in log_path.read_text().splitlines() if "ready: model" in line]
    assert len(lines) == 1, lines
    logged = READY_LINE.search(lines[0])
    assert logged, lines[0]
    assert int(logged["port"]) == int(url.rsplit(":", 1)[1])
    for phase, seconds in {**phases, "total": total}.items():
        assert float(logged[phase]) == pytest.approx(seconds, abs=0.006), phase


def test_the_clock_starts_when_the_process_started_not_when_serving_was_imported():
    code = (
        "import time; time.sleep(0.5); from quayside.serving.startup import PROCESS_STARTED;"
        "print(time.monotonic() - PROCESS_STARTED)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert 0.5 <= float(result.stdout) < 30


def test_the_app_exposes_one_gauge_per_phase_and_the_total_labelled_only_by_model(tensor_package):
    runtime = load_runtime(tensor_package)
    with TestClient(create_app(runtime, ServeOptions()), base_url="http://127.0.0.1") as client:
        text = client.get("/metrics").text
    families = {family.name: family for family in text_string_to_metric_families(text)}
    phase_family = families["quayside_startup_phase_seconds"]
    total_family = families["quayside_startup_seconds"]
    assert (phase_family.type, total_family.type) == ("gauge", "gauge")
    model = {"model": "diabetes", "version": ""}
    assert [sample.labels for sample in phase_family.samples] == [
        {"phase": "import"} | model,
        {"phase": "load"} | model,
        {"phase": "warmup"} | model,
    ]
    assert [sample.labels for sample in total_family.samples] == [model]
    phases, total = _startup_samples(text)
    assert (phases["load"], phases["warmup"]) == (runtime.load_seconds, runtime.warmup_seconds)
    assert runtime.warmup_seconds > 0  # the package has an input example: it was run
    assert sum(phases.values()) <= total
