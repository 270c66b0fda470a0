"""``--workers N``: Locust's own master and N local worker processes, folded into one report and verdict.

Real load against a real 2-worker ``quayside serve``, in a child process (Locust's gevent
patching stays there), a few seconds each.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.loadtesting.conftest import read_report, run_cli
from tests.serving.conftest import RunningServer, start_server


@pytest.fixture(scope="module")
def two_worker_server(tensor_input_package, tmp_path_factory) -> Iterator[RunningServer]:
    server = start_server(
        tensor_input_package,
        "--workers",
        "2",
        "--quiet",
        log_dir=tmp_path_factory.mktemp("log"),
        ready_timeout=120,
    )
    yield server
    server.stop()


def _workers(report: dict) -> list[dict]:
    return [p for p in report["generator"]["by_process"] if p["role"] == "worker"]


def test_two_workers_give_one_report_whose_request_count_is_the_sum_of_the_workers(
    two_worker_server, tensor_input_package, tmp_path
):
    result = run_cli(
        "loadtest", f"{two_worker_server.url}/v2/models/diabetes", "--model", str(tensor_input_package),
        "--workers", "2", "--users", "8", "--spawn-rate", "8", "--duration", "3s",
        "--slo", "error_rate<=0,rps>=1", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(tmp_path)
    workers = _workers(report)
    # Each worker's count is Locust's own (the stats in its reports to the master).
    assert [w["index"] for w in workers] == [1, 2]
    assert all(w["requests"] > 0 for w in workers), workers
    assert sum(w["requests"] for w in workers) == report["summary"]["requests"] > 50
    assert sum(p["requests"] for p in report["timeseries"]) == report["summary"]["requests"]
    assert report["summary"]["failures"] == 0 and report["verdict"]["passed"] is True
    assert len(report["timeseries"]) == 3 and report["timeseries"][-1]["users"] == 8
    generator = report["generator"]
    assert (generator["processes"], generator["workers"]) == (3, 2)
    assert [p["role"] for p in generator["by_process"]] == ["master", "worker", "worker"]
    # Real CPU figures, measured per process over the run.
    assert all(w["cpu_s"] > 0 and w["cpu_percent"] > 0 for w in workers)
    assert generator["cpu_s"] >= sum(w["cpu_s"] for w in workers)
    assert generator["cpu_percent"] == max(p["cpu_percent"] for p in generator["by_process"])
    assert "Locust master and 2 workers" in result.stdout


def test_a_single_process_run_records_its_own_cpu(two_worker_server, tmp_path):
    result = run_cli(
        "loadtest", two_worker_server.url, "--model-name", "diabetes", "--users", "4", "--spawn-rate", "4",
        "--duration", "2s", "--out", str(tmp_path),
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    generator = read_report(tmp_path)["generator"]
    [process] = generator["by_process"]
    assert (generator["processes"], generator["workers"], process["role"]) == (1, 0, "local")
    assert process["cpu_s"] > 0 and generator["cpu_percent"] == process["cpu_percent"] > 0
    assert "load generator: 1 process at" in result.stdout


def test_more_workers_than_users_is_refused_before_any_load(tmp_path):
    result = run_cli("loadtest", "http://127.0.0.1:9/v2/models/x", "--workers", "4", "--users", "2")
    assert result.returncode == 1
    assert "--workers 4 is more than --users 2" in result.stderr and "Traceback" not in result.stderr
