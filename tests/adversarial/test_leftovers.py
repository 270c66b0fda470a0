"""Temporary files of interrupted writes are swept when the server starts, and only those.

A real ``quayside server`` is killed (``kill -9``) while uploads are in flight: a
Quayside artifact, an MLflow proxied artifact and a registry package, each sent by
a client that stops halfway through its body. The restarted server leaves no
temporary file behind, and the artifacts that completed before are intact. A second
server starting beside a live one leaves that one's uploads in progress alone.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quayside.scratch import SCRATCH_DIR
from tests.db.fixtures import Server, clean_env

MIB = 1 << 20
TRACKING, MLFLOW = "/api/tracking", "/api/2.0/mlflow"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
DEADLINE_S = 30


class UploadServer(Server):
    """A server with room for uploads of several MiB."""

    def env(self) -> dict[str, str]:
        return clean_env(
            QUAYSIDE_HOME=str(self.home),
            QUAYSIDE_DB_URL=self.db_url,
            QUAYSIDE_MAX_ARTIFACT_BYTES=str(64 * MIB),
        )


class Servers:
    """Servers a test starts over one home, each with an HTTP client to it."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.started: list[tuple[UploadServer, httpx.Client]] = []

    def start(self) -> tuple[UploadServer, httpx.Client]:
        server = UploadServer(self.home, f"sqlite:///{self.home / 'quayside.db'}").start()
        http = httpx.Client(base_url=server.url, timeout=60)
        self.started.append((server, http))
        return server, http

    def stop(self) -> None:
        for server, http in self.started:
            http.close()
            server.kill()


@pytest.fixture
def servers(tmp_path: Path) -> Iterator[Servers]:
    """Servers made by the test over one home, stopped at its end."""
    made = Servers(tmp_path / "home")
    yield made
    made.stop()


class HalfUpload:
    """A client that declares a large body, sends part of it and then goes quiet (its socket stays open)."""

    def __init__(self, server: Server, method: str, target: str, *, total: int, sent: int) -> None:
        self.socket = socket.create_connection(("127.0.0.1", server.port))
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/octet-stream\r\n"
            f"Content-Length: {total}\r\n\r\n"
        )
        self.socket.sendall(head.encode() + b"\x01" * sent)
        self.total, self.sent = total, sent

    def finish(self) -> bytes:
        """Send the rest of the body and read the answer's status line."""
        self.socket.sendall(b"\x01" * (self.total - self.sent))
        return self.socket.recv(4096).split(b"\r\n", 1)[0]

    def close(self) -> None:
        self.socket.close()


def scratch_entries(home: Path) -> list[Path]:
    directory = home / "artifacts" / SCRATCH_DIR
    if not directory.is_dir():
        return []
    return sorted(p for p in directory.iterdir() if not p.name.startswith("."))


def entry_bytes(entry: Path) -> int:
    if entry.is_file():
        return entry.stat().st_size
    return sum(p.stat().st_size for p in entry.rglob("*") if p.is_file())


def wait_for_temporaries(home: Path, count: int) -> list[Path]:
    """The scratch entries once ``count`` of them hold bytes (the server is streaming into them)."""
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline:
        entries = scratch_entries(home)
        if len([e for e in entries if entry_bytes(e) > 0]) >= count:
            return entries
        time.sleep(0.05)  # polling for the server to have written, not waiting for a result
    raise AssertionError(f"the uploads never reached the disk: {scratch_entries(home)}")


def new_run(http: httpx.Client) -> str:
    experiment = http.post(f"{TRACKING}/experiments", json={"name": f"leftovers-{uuid.uuid4().hex[:8]}"})
    run = http.post(f"{TRACKING}/runs", json={"experiment_id": experiment.json()["id"]})
    return run.json()["id"]


def test_a_restart_after_kill_9_leaves_no_temporary_files_and_keeps_completed_artifacts(servers: Servers):
    home = servers.home
    server, http = servers.start()
    run_id = new_run(http)
    done = os.urandom(300_000)
    put = http.put(
        f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "done/weights.bin"}, content=done
    )
    assert put.status_code == 201, put.text
    assert http.put(f"{MLFLOW_ARTIFACTS}/{run_id}/mlflow/done.txt", content=b"complete\n").status_code == 200
    run_dir = home / "artifacts" / "runs" / run_id
    # A temporary file of an older release (beside its destination), from long ago, and one of now.
    old_leftover, recent_leftover = (
        run_dir / "done" / ".quayside-upload-old",
        run_dir / ".quayside-upload-new",
    )
    old_leftover.write_bytes(b"x" * 1000)
    recent_leftover.write_bytes(b"y")
    os.utime(old_leftover, (time.time() - 7200, time.time() - 7200))

    uploads = [
        HalfUpload(
            server,
            "PUT",
            f"{TRACKING}/runs/{run_id}/artifacts/file?path=half/big.bin",
            total=24 * MIB,
            sent=MIB,
        ),
        HalfUpload(server, "PUT", f"{MLFLOW_ARTIFACTS}/{run_id}/mlflow/big.bin", total=24 * MIB, sent=MIB),
        HalfUpload(server, "POST", "/api/registry/models/leftover/versions", total=8 * MIB, sent=MIB),
    ]
    in_flight = wait_for_temporaries(home, 3)
    server.kill()  # SIGKILL: no handler of the server runs
    for upload in uploads:
        upload.close()
    assert all(entry.exists() for entry in in_flight)  # what the crash left

    server, http = servers.start()
    assert scratch_entries(home) == []
    assert not old_leftover.exists()
    assert recent_leftover.exists()  # too recent to tell from a live upload of an older server
    listed = {
        a["path"]
        for a in http.get(f"{TRACKING}/runs/{run_id}/artifacts", params={"recursive": True}).json()[
            "artifacts"
        ]
    }
    # not "half": the folder of an upload cut short is made only when its file is committed
    assert listed == {"done", "done/weights.bin", "mlflow", "mlflow/done.txt"}
    downloaded = http.get(f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "done/weights.bin"})
    assert downloaded.content == done
    assert http.get(f"{MLFLOW_ARTIFACTS}/{run_id}/mlflow/done.txt").content == b"complete\n"
    assert http.get("/api/registry/models").json()["models"] == []


def test_a_second_server_starting_leaves_the_uploads_of_a_live_one_alone(servers: Servers):
    first, http = servers.start()
    run_id = new_run(http)
    upload = HalfUpload(
        first, "PUT", f"{TRACKING}/runs/{run_id}/artifacts/file?path=slow.bin", total=4 * MIB, sent=MIB
    )
    (in_flight,) = wait_for_temporaries(servers.home, 1)

    servers.start()  # sweeps at start, beside the first server
    assert scratch_entries(servers.home) == [in_flight]

    assert upload.finish().startswith(b"HTTP/1.1 201")
    upload.close()
    file = http.get(f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "slow.bin"})
    assert file.content == b"\x01" * (4 * MIB)
    assert scratch_entries(servers.home) == []
