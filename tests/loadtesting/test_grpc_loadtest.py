"""``quayside loadtest --protocol grpc``: Locust users calling ``ModelInfer`` on real servers, short runs.

The load runs in a child process, as for REST: Locust's gevent patching, and our
generated ``inference.*`` messages (which tritonclient's define too, in the same
protobuf pool), stay out of the pytest process.
"""

from __future__ import annotations

import pytest

from tests.loadtesting.conftest import read_report, run_cli
from tests.serving.conftest import free_port, start_server

MODEL_INFER = "/inference.GRPCInferenceService/ModelInfer"


def test_a_model_served_here_is_loaded_over_grpc_and_every_call_succeeds(mixed_table_package, tmp_path):
    result = run_cli(
        "loadtest", str(mixed_table_package), "--protocol", "grpc", "--duration", "3s", "--users", "4",
        "--spawn-rate", "4", "--rows", "3", "--slo", "error_rate<=0,rps>=1", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(tmp_path)
    assert report["protocol"] == "grpc" and report["path"] == MODEL_INFER
    assert report["target"].startswith("127.0.0.1:")  # the gRPC port the served model listened on
    assert report["rows_per_request"] == 3
    summary = report["summary"]
    assert summary["requests"] > 50 and summary["failures"] == 0 and report["errors"] == []
    assert all(summary[key] is not None and summary[key] > 0 for key in ("p50_ms", "p95_ms", "p99_ms"))
    assert report["verdict"]["passed"] is True and "all objectives met" in result.stdout
    assert len(report["timeseries"]) == 3
    assert "(grpc" in (tmp_path / "report.html").read_text()


@pytest.fixture(scope="module")
def grpc_server(tensor_input_package, tmp_path_factory):
    port = free_port()
    server = start_server(
        tensor_input_package, "--quiet", "--grpc-port", str(port), log_dir=tmp_path_factory.mktemp("log")
    )
    yield server, f"127.0.0.1:{port}"
    server.stop()


def test_two_workers_call_model_infer_and_their_counts_add_up_to_the_report(grpc_server, tmp_path):
    server, grpc_target = grpc_server
    result = run_cli(
        "loadtest", f"{server.url}/v2/models/diabetes", "--protocol", "grpc", "--grpc-target", grpc_target,
        "--workers", "2", "--duration", "2s", "--users", "4", "--spawn-rate", "4", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(tmp_path)
    workers = [p for p in report["generator"]["by_process"] if p["role"] == "worker"]
    assert len(workers) == 2 and all(w["requests"] > 0 for w in workers)
    assert sum(w["requests"] for w in workers) == report["summary"]["requests"]
    assert report["summary"]["failures"] == 0 and report["target"] == grpc_target


def test_a_running_server_is_loaded_at_its_grpc_target_and_an_impossible_slo_fails(grpc_server, tmp_path):
    server, grpc_target = grpc_server
    result = run_cli(
        "loadtest", f"{server.url}/v2/models/diabetes", "--protocol", "grpc", "--grpc-target", grpc_target,
        "--duration", "2s", "--users", "2", "--slo", "error_rate<=0,p95_ms<=0.001", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    report = read_report(tmp_path)
    assert report["target"] == grpc_target and report["protocol"] == "grpc"
    assert report["summary"]["failures"] == 0 and report["summary"]["requests"] > 20
    passed = {o["objective"]: o["passed"] for o in report["verdict"]["objectives"]}
    assert passed == {"error_rate<=0": True, "p95_ms<=0.001": False}
    assert "SLO not met" in result.stdout and "FAIL" in result.stdout


def test_a_wrong_grpc_target_fails_before_any_load_in_one_readable_line(tensor_input_package, tmp_path):
    closed = free_port()
    result = run_cli(
        "loadtest", "http://127.0.0.1:9/v2/models/diabetes", "--model", str(tensor_input_package),
        "--protocol", "grpc", "--grpc-target", f"127.0.0.1:{closed}", "--duration", "1s", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    (line,) = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert f"no gRPC inference server answers at 127.0.0.1:{closed} (UNAVAILABLE)" in line
    assert not (tmp_path / "report.json").exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--grpc-target", "127.0.0.1:8081"), "--grpc-target goes with --protocol grpc"),
        (("--protocol", "grpc", "--grpc-target", "no-port"), "is not HOST:PORT"),
    ],
)
def test_a_grpc_target_that_cannot_apply_is_refused_before_any_load(args, message):
    result = run_cli("loadtest", "http://127.0.0.1:9/v2/models/x", *args)
    assert result.returncode == 1 and message in result.stderr
    assert "Traceback" not in result.stderr


def test_promote_over_grpc_stores_a_grpc_report_that_the_registry_judges(home, staged):
    staged.set_policy("members", slo="error_rate<=0,p99_ms<=5000", min_duration_s=1)
    result = run_cli(
        "promote", "members", "2", "--protocol", "grpc", "--duration", "2s", "--users", "4",
        "--spawn-rate", "4", env={"QUAYSIDE_HOME": str(home)},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    assert staged.get_version("members", 2).stage == "production"
    (stored,) = staged.loadtest_reports("members", 2)
    assert stored.passed is True
    document = staged.loadtest_report("members", 2, stored.id)
    assert document["protocol"] == "grpc" and document["path"] == MODEL_INFER
    assert document["summary"]["failures"] == 0


def test_the_default_grpc_target_is_the_urls_host_on_port_8081():
    from quayside.errors import UsageError
    from quayside.loadtesting.target import default_grpc_target, parse_grpc_target

    assert default_grpc_target("http://models.internal:8080") == "models.internal:8081"
    assert default_grpc_target("https://[::1]:8443") == "[::1]:8081"
    assert parse_grpc_target(" [::1]:9000 ") == "[::1]:9000"
    for wrong in ("host", "host:0", "host:70000", ":8081", "http://host:8081"):
        with pytest.raises(UsageError, match="is not HOST:PORT"):
            parse_grpc_target(wrong)
