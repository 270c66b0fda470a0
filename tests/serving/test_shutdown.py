"""Graceful shutdown: SIGTERM lets in-flight requests finish, then the server exits 0."""

from __future__ import annotations

import re
import signal
import threading
import time

import httpx
import pytest

from tests.serving.conftest import start_server


def _in_flight(url: str) -> float:
    match = re.search(
        r'^quayside_requests_in_flight\{model="slow",version=""\} (\S+)$',
        httpx.get(f"{url}/metrics").text,
        re.MULTILINE,
    )
    return float(match.group(1)) if match else 0.0


@pytest.mark.parametrize("workers", [1, 2])
def test_sigterm_with_50_requests_in_flight_completes_them_all_then_exits_0(slow_package, tmp_path, workers):
    server = start_server(slow_package, "--trust", "--quiet", "--workers", str(workers), log_dir=tmp_path)
    statuses: list[int] = []
    answers: list[float] = []
    lock = threading.Lock()
    client = httpx.Client(limits=httpx.Limits(max_connections=60), timeout=30)

    def call(i: int) -> None:
        response = client.post(f"{server.url}/invocations", json={"inputs": [[i, i, i]]})
        with lock:
            statuses.append(response.status_code)
            if response.status_code == 200:
                answers.append(response.json()["predictions"][0] - 3 * i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(50)]
    for thread in threads:
        thread.start()
    try:
        if workers == 1:  # with several workers /metrics may be answered by any of them; wait instead
            deadline = time.monotonic() + 10
            while _in_flight(server.url) < 50 and time.monotonic() < deadline:
                time.sleep(0.01)
            assert _in_flight(server.url) == 50
        else:
            time.sleep(0.3)
        server.process.send_signal(signal.SIGTERM)
        for thread in threads:
            thread.join(30)
        assert server.process.wait(30) == 0
    finally:
        server.stop()
        client.close()
    assert statuses == [200] * 50
    assert answers == [0.0] * 50  # each caller got the sum of its own row
    assert "readiness is now false" in server.log()


def test_after_sigterm_no_new_connection_is_accepted(slow_package, tmp_path):
    server = start_server(slow_package, "--trust", "--quiet", log_dir=tmp_path)
    slow = threading.Thread(
        target=lambda: httpx.post(f"{server.url}/invocations", json={"inputs": [[1, 2, 3]]}, timeout=30)
    )
    slow.start()
    time.sleep(0.2)
    server.process.send_signal(signal.SIGTERM)
    time.sleep(0.2)
    with pytest.raises(httpx.TransportError):
        httpx.get(f"{server.url}/v2/health/ready", timeout=2)
    slow.join(30)
    assert server.process.wait(30) == 0
