"""The model server answers only to the Host names it is reached under (DNS rebinding gets 400)."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import httpx
import pytest

from quayside.errors import UsageError
from quayside.hosts import HostAllowList, default_allowed_hosts, host_name, parse_allowed_hosts
from tests.serving.conftest import error_of, free_port, start_server

V2_BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 10], "data": [0.01] * 10}]}


def infer(url: str, host: str) -> httpx.Response:
    return httpx.post(f"{url}/v2/models/diabetes/infer", json=V2_BODY, headers={"Host": host}, timeout=10)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/v2/models/diabetes/infer"),  # the fast path
        ("POST", "/invocations"),  # the fast path
        ("GET", "/v2/models/diabetes"),  # FastAPI
        ("GET", "/docs"),
        ("GET", "/v2/health/ready"),
    ],
)
def test_a_foreign_host_gets_400_invalid_host_on_every_route(tensor_server, method, path):
    body = V2_BODY if "infer" in path else {"inputs": [[0.01] * 10]}
    response = httpx.request(
        method,
        f"{tensor_server.url}{path}",
        json=body if method == "POST" else None,
        headers={"Host": "evil.example"},
        timeout=10,
    )
    assert response.status_code == 400, response.text
    code, message = error_of(path, response)
    assert code == "invalid_host"
    assert "evil.example" in message and "--allowed-hosts" in message


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "[::1]", "LOCALHOST", "localhost."])
def test_loopback_names_with_any_port_are_answered_by_default(tensor_server, name):
    port = tensor_server.url.rsplit(":", 1)[1]
    for host in (name, f"{name}:{port}", f"{name}:9999"):
        response = infer(tensor_server.url, host)
        assert response.status_code == 200, (host, response.text)


def test_a_name_that_ends_in_an_allowed_one_is_not_allowed(tensor_server):
    for host in ("localhost.evil.example", "evil.example:80@localhost", "127.0.0.1.nip.io", "localhostx"):
        assert infer(tensor_server.url, host).status_code == 400, host


@pytest.fixture(scope="module")
def named_server(tensor_package, tmp_path_factory):
    server = start_server(
        tensor_package,
        "--allowed-hosts",
        "models.example.com, 10.0.0.7",
        log_dir=tmp_path_factory.mktemp("log"),
    )
    yield server
    server.stop()


def test_allowed_hosts_names_the_hosts_answered_and_only_those(named_server):
    assert infer(named_server.url, "models.example.com").status_code == 200
    assert infer(named_server.url, "Models.Example.com:443").status_code == 200
    assert infer(named_server.url, "10.0.0.7:8080").status_code == 200
    assert infer(named_server.url, "evil.example").status_code == 400
    # Loopback names stay: the health checks on the machine itself use them.
    assert infer(named_server.url, "localhost").status_code == 200
    assert "answering Host models.example.com, 10.0.0.7, localhost" in named_server.log()


def test_the_image_entry_point_bound_to_every_interface_answers_a_probe_by_pod_ip(tensor_package, tmp_path):
    """Kubernetes probes send the pod IP as Host; a Service's clients send its DNS name."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
    log = (tmp_path / "log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "quayside.serving", str(tensor_package)],
        env=env | {"PORT": str(port), "HOST": "0.0.0.0"},
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline, ready = time.monotonic() + 60, None
        while time.monotonic() < deadline and ready is None:
            try:
                ready = httpx.get(
                    f"http://127.0.0.1:{port}/v2/health/ready",
                    headers={"Host": f"10.42.0.17:{port}"},
                    timeout=1,
                )
            except httpx.TransportError:
                time.sleep(0.1)
        assert ready is not None and ready.status_code == 200
        assert infer(f"http://127.0.0.1:{port}", "diabetes.models.svc.cluster.local").status_code == 200
    finally:
        process.terminate()
        process.wait(30)
    assert "answering any Host header" in (tmp_path / "log").read_text()


def test_the_image_entry_point_takes_the_allow_list_from_the_environment(tensor_package, tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "quayside.serving", str(tensor_package)],
        env=env | {"PORT": str(port), "HOST": "0.0.0.0", "QUAYSIDE_ALLOWED_HOSTS": "models.example.com"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                httpx.get(f"http://127.0.0.1:{port}/v2/health/live", timeout=1)
                break
            except httpx.TransportError:
                time.sleep(0.1)
        url = f"http://127.0.0.1:{port}"
        assert infer(url, "models.example.com").status_code == 200
        assert infer(url, "10.42.0.17").status_code == 400
    finally:
        process.terminate()
        process.wait(30)


# --- the rule itself ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("bind", "allowed", "refused"),
    [
        ("127.0.0.1", ["localhost:8080", "127.0.0.1", "[::1]:1", "::1"], ["evil.example", "10.0.0.5"]),
        ("::1", ["[::1]:8080", "localhost"], ["evil.example"]),
        ("10.0.0.5", ["10.0.0.5:8080", "localhost"], ["evil.example", "10.0.0.6"]),
        ("fe80::1", ["[fe80::1]:8080", "127.0.0.1"], ["[fe80::2]"]),
        ("0.0.0.0", ["evil.example", "10.0.0.5"], []),
        ("::", ["anything"], []),
    ],
)
def test_the_default_follows_the_bound_address(bind, allowed, refused):
    hosts = HostAllowList.for_server(bind)
    for host in allowed:
        assert hosts.allows(host.encode()), (bind, host)
    for host in refused:
        assert not hosts.allows(host.encode()), (bind, host)


def test_a_request_without_a_host_header_passes_it_is_no_browser():
    assert HostAllowList.for_server("127.0.0.1").allows(None)


def test_the_name_part_of_a_host_header():
    assert host_name(b"Example.COM:8080") == b"example.com"
    assert host_name(b"[::1]:8080") == b"[::1]"
    assert host_name(b"localhost.") == b"localhost"
    assert host_name(b"::1") == b"[::1]"


def test_allowed_hosts_parse_and_refuse_what_is_no_host_name():
    assert parse_allowed_hosts(" a.example , *,") == ("a.example", "*")
    assert parse_allowed_hosts("") is None and parse_allowed_hosts(None) is None
    with pytest.raises(UsageError, match="not a host name"):
        parse_allowed_hosts("http://a.example/")
    assert default_allowed_hosts("0.0.0.0") == ("*",)
