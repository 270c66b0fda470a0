"""``quayside loadtest``: real Locust load against real servers, in a child process, short runs."""

from __future__ import annotations

import pytest

from tests.loadtesting.conftest import read_report, run_cli


@pytest.mark.parametrize("protocol", ["v2", "invocations"])
def test_a_model_uri_is_served_locally_loaded_and_every_request_succeeds(
    mixed_table_package, tmp_path, protocol
):
    result = run_cli(
        "loadtest", str(mixed_table_package), "--duration", "3s", "--users", "8", "--spawn-rate", "8",
        "--rows", "3", "--protocol", protocol, "--slo", "error_rate<=0,rps>=1", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(tmp_path)
    assert report["summary"]["requests"] > 50
    assert report["summary"]["failures"] == 0 and report["errors"] == []
    assert report["verdict"]["passed"] is True
    assert len(report["timeseries"]) == 3
    assert "all objectives met" in result.stdout
    assert (tmp_path / "report.html").is_file()


def test_a_running_server_is_loaded_by_url_with_the_signature_from_its_metadata(
    tensor_input_server, tensor_input_package, tmp_path
):
    result = run_cli(
        "loadtest", f"{tensor_input_server.url}/v2/models/diabetes", "--model", str(tensor_input_package),
        "--duration", "2s", "--users", "4", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    report = read_report(tmp_path)
    assert report["summary"]["failures"] == 0 and report["summary"]["requests"] > 20
    assert report["verdict"] is None


def test_an_impossible_slo_exits_1_with_the_verdict(tensor_input_server, tmp_path):
    result = run_cli(
        "loadtest", tensor_input_server.url, "--model-name", "diabetes", "--duration", "2s",
        "--users", "2", "--slo", "p95_ms<=0.001", "--out", str(tmp_path),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    assert "SLO not met" in result.stdout and "FAIL" in result.stdout
    assert read_report(tmp_path)["verdict"]["objectives"][0]["passed"] is False


def test_a_malformed_slo_fails_before_any_load_naming_the_term(tmp_path):
    result = run_cli("loadtest", "http://127.0.0.1:9/v2/models/x", "--slo", "p95_ms<=25,latency<5")
    assert result.returncode == 1
    assert "latency<5" in result.stderr
    assert "Traceback" not in result.stderr


def test_importing_the_cli_does_not_import_locust_or_gevent():
    import subprocess
    import sys

    code = "import sys, quayside.cli.app; print(any(m.split('.')[0] in ('locust', 'gevent') for m in sys.modules))"
    assert (
        subprocess.run([sys.executable, "-c", code], capture_output=True, text=True).stdout.strip() == "False"
    )


# --- --register: the report goes to the registry, which judges it ---------------------------------


@pytest.fixture
def registered(tmp_path, mixed_table_package):
    """'members' v1 in the test's own home, with a policy a 2 s test can meet."""
    from quayside.compose.clients import RegistryClient
    from quayside.config import Settings

    client = RegistryClient(settings=Settings(home=tmp_path / "home"))
    client.register_model(str(mixed_table_package), "members")
    client.set_policy("members", slo="error_rate<=0,p99_ms<=5000", min_duration_s=2)
    return client


def test_register_stores_a_report_that_registry_reports_lists(registered, mixed_table_package, tmp_path):
    env = {"QUAYSIDE_HOME": str(tmp_path / "home")}
    result = run_cli(
        "loadtest", "models:/members/1", "--register", "members", "1", "--duration", "2s", "--users", "4",
        "--spawn-rate", "4", "--out", str(tmp_path / "out"), env=env,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    [stored] = registered.loadtest_reports("members", 1)
    assert f"stored as report {stored.id} of models:/members/1" in result.stdout
    assert stored.passed is True and stored.judgement.qualifies
    assert stored.tested == {"kind": "package", "package_digest": registered.get_version("members", 1).digest}
    assert read_report(tmp_path / "out")["verdict"]["passed"] is True  # judged here with the policy's SLO
    listed = run_cli("registry", "reports", "members", "1", env=env)
    assert listed.returncode == 0, listed.stderr
    [row] = [line for line in listed.stdout.splitlines() if stored.id in line]
    assert "met" in row and "yes" in row


def test_register_with_a_server_url_records_the_server_and_fails_on_the_registrys_verdict(
    registered, mixed_table_server, mixed_table_package, tmp_path
):
    registered.set_policy("members", slo="p95_ms<=0.001")
    result = run_cli(
        "loadtest", f"{mixed_table_server.url}/v2/models/members", "--model", str(mixed_table_package),
        "--register", "members", "1", "--duration", "2s", "--users", "2", "--out", str(tmp_path / "out"),
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1, result.stdout + result.stderr
    [stored] = registered.loadtest_reports("members", 1)
    assert stored.passed is False and stored.tested["kind"] == "server"
    assert stored.tested["url"] == f"{mixed_table_server.url}/v2/models/members"
    assert "SLO not met" in result.stdout and "does not qualify" in result.stdout


def test_register_with_a_url_and_no_model_is_a_usage_error_naming_model(registered, tmp_path):
    result = run_cli(
        "loadtest", "http://127.0.0.1:9/v2/models/members", "--register", "members", "1",
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1 and "--model" in result.stderr and "Traceback" not in result.stderr
    assert registered.loadtest_reports("members", 1) == []


def test_register_refuses_another_package_before_any_load(registered, tensor_input_package, tmp_path):
    result = run_cli(
        "loadtest", str(tensor_input_package), "--register", "members", "1",
        env={"QUAYSIDE_HOME": str(tmp_path / "home")},
    )  # fmt: skip
    assert result.returncode == 1 and "not version 1 of 'members'" in result.stderr
    assert "Traceback" not in result.stderr and registered.loadtest_reports("members", 1) == []
