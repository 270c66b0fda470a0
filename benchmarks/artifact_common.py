"""What the artifact benchmarks share: a moto S3 server, a real ``quayside server``, RSS, and a body.

Not a benchmark itself; ``artifact_server_rss.py`` and ``artifact_throughput.py`` import it.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

QUAYSIDE = str(Path(sys.executable).parent / "quayside")
MIB = 1 << 20
ACCESS_KEY, SECRET_KEY, REGION = "bench-access-key", "bench-secret-key", "us-east-1"
AWS_ENV = {
    "AWS_ACCESS_KEY_ID": ACCESS_KEY,
    "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_EC2_METADATA_DISABLED": "true",
}
_MOTO = """
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()
server.stop()
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def moto_endpoint() -> Iterator[str]:
    """moto's S3 server in a process of its own; yields ``http://127.0.0.1:PORT``."""
    process = subprocess.Popen(
        [sys.executable, "-c", _MOTO],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env={**os.environ, **AWS_ENV},
    )
    try:
        yield f"http://127.0.0.1:{int(process.stdout.readline())}"
    finally:
        process.stdin.close()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


def s3_client(endpoint: str):
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=endpoint, config=Config(s3={"addressing_style": "path"}))


@dataclass
class RunningServer:
    url: str
    process: subprocess.Popen

    @property
    def pid(self) -> int:
        return self.process.pid


@contextmanager
def quayside_server(
    artifact_root: str | None, *, endpoint: str | None, max_bytes: int
) -> Iterator[RunningServer]:
    """A ``quayside server`` on a free port over a temporary home (SQLite), the root given or local."""
    with tempfile.TemporaryDirectory(prefix="quayside-bench-") as home:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUAYSIDE_")}
        env |= AWS_ENV | {"QUAYSIDE_HOME": home, "QUAYSIDE_MAX_ARTIFACT_BYTES": str(max_bytes)}
        if artifact_root:
            env["QUAYSIDE_ARTIFACT_ROOT"] = artifact_root
        if endpoint:
            env["QUAYSIDE_S3_ENDPOINT_URL"] = endpoint
        port = free_port()
        process = subprocess.Popen(
            [QUAYSIDE, "server", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 180
            while True:
                if process.poll() is not None:
                    raise SystemExit(f"quayside server exited: {process.stderr.read().decode()}")
                try:
                    if httpx.get(f"{url}/health", timeout=1).status_code == 200:
                        break
                except httpx.TransportError:
                    if time.monotonic() > deadline:
                        raise SystemExit("quayside server did not start") from None
                    time.sleep(0.1)
            yield RunningServer(url, process)
        finally:
            process.terminate()
            process.wait(timeout=30)


def new_run(http: httpx.Client) -> str:
    experiment = http.post("/api/tracking/experiments", json={"name": f"bench-{uuid.uuid4().hex[:8]}"})
    return http.post("/api/tracking/runs", json={"experiment_id": experiment.json()["id"]}).json()["id"]


def body(size: int, block: bytes) -> Iterator[bytes]:
    """``size`` bytes, one block at a time (the same random block repeated: no CPU spent making data)."""
    sent = 0
    while sent < size:
        piece = block[: min(len(block), size - sent)]
        sent += len(piece)
        yield piece


def rss_kib(pid: int, field: str = "VmRSS") -> int:
    """A process's resident set (``VmRSS``) or its peak so far (``VmHWM``), in KiB (Linux)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise RuntimeError(f"no {field} for process {pid}")
