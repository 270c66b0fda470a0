"""Stateless replicas: two ``quayside server`` processes on one database and one artifact root are one server.

Each replica has a home of its own (as on two machines) and shares only PostgreSQL and
the artifact root: a directory here, and an S3 bucket on moto's server. And
``quayside server --workers N`` runs N processes answering on one port.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from sklearn.linear_model import Ridge

import quayside
from quayside.registry.artifacts import iter_tar
from quayside.registry.rest import RestRegistry
from quayside.scratch import SCRATCH_DIR
from tests.artifacts.conftest import ACCESS_KEY, REGION, SECRET_KEY, moto_server
from tests.db import fixtures

CLIENT_TIMEOUT_S = 60  # a hang guard only
REGISTRATIONS = 20
WORKERS_START_TIMEOUT_S = 180
"""A hang guard for a server's or a worker's start (the test machines are small and shared)."""


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, diabetes) -> Path:
    X, y = diabetes
    path = tmp_path_factory.mktemp("models") / "replicated"
    quayside.save_model(Ridge().fit(X, y), path, input_example=X[:5].astype(np.float32), name="replicated")
    return path


@pytest.fixture(scope="module")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with moto_server(tmp_path_factory.mktemp("moto") / "server.log", **_aws_variables()) as endpoint:
        yield endpoint


def _aws_variables() -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": ACCESS_KEY,
        "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
        "AWS_DEFAULT_REGION": REGION,
        "AWS_EC2_METADATA_DISABLED": "true",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/quayside-test/credentials",
        "AWS_CONFIG_FILE": "/nonexistent/quayside-test/config",
    }


def _s3(endpoint: str) -> Any:
    import boto3

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=endpoint)


def _new_bucket(endpoint: str) -> str:
    name = f"quayside-{uuid.uuid4().hex[:16]}"
    _s3(endpoint).create_bucket(Bucket=name)
    return name


@dataclass
class Replicas:
    a: fixtures.Server
    b: fixtures.Server
    scratch: list[Path]
    """Where each replica's writes in progress live (the shared root itself when it is a directory)."""
    cache: Path
    stored: Any
    """The keys stored under the shared root, listed behind the servers' backs."""

    def registry(self, server: fixtures.Server) -> RestRegistry:
        return RestRegistry(server.url, self.cache / uuid.uuid4().hex, timeout_s=CLIENT_TIMEOUT_S)


@pytest.fixture(params=["directory", "s3"])
def replicas(
    request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Replicas]:
    """Two servers on one new PostgreSQL database and one artifact root."""
    monkeypatch.setattr(fixtures, "SERVER_START_TIMEOUT_S", WORKERS_START_TIMEOUT_S)  # a start, not a test
    settings = {"QUAYSIDE_MAX_ARTIFACT_BYTES": str(64 << 20)}
    if request.param == "directory":
        shared = tmp_path / "shared-artifacts"
        settings["QUAYSIDE_ARTIFACT_ROOT"] = str(shared)
        scratch = [shared / SCRATCH_DIR] * 2

        def stored() -> list[str]:
            return [
                str(p.relative_to(shared))
                for p in shared.rglob("*")
                if p.is_file() and SCRATCH_DIR not in p.parts
            ]
    else:
        endpoint = request.getfixturevalue("s3_endpoint")
        bucket = _new_bucket(endpoint)
        settings |= _aws_variables() | {
            "QUAYSIDE_ARTIFACT_ROOT": f"s3://{bucket}/team",
            "QUAYSIDE_S3_ENDPOINT_URL": endpoint,
        }
        scratch = [tmp_path / home / "work" / SCRATCH_DIR for home in ("a", "b")]

        def stored() -> list[str]:
            listed = _s3(endpoint).list_objects_v2(Bucket=bucket, Prefix="team/")
            return [entry["Key"] for entry in listed.get("Contents", [])]

    database = fixtures.create_postgres_database()
    url = fixtures.postgres_url(database)
    servers = [fixtures.Server(tmp_path / home, url, settings=dict(settings)) for home in ("a", "b")]
    try:
        for server in servers:
            server.start()
        yield Replicas(*servers, scratch=scratch, cache=tmp_path / "client-cache", stored=stored)
    finally:
        for server in servers:
            server.stop()
        fixtures.drop_postgres_database(database)


def test_what_one_replica_writes_the_other_reads_at_once(replicas: Replicas, package: Path):
    a, b = httpx.Client(base_url=replicas.a.url), httpx.Client(base_url=replicas.b.url)
    with a, b:
        experiment = a.post("/api/tracking/experiments", json={"name": "shared"}).json()
        assert b.get(f"/api/tracking/experiments/{experiment['id']}").json()["name"] == "shared"
        run = b.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()
        logged = a.post(
            f"/api/tracking/runs/{run['id']}/batch",
            json={"params": {"alpha": "0.5"}, "metrics": [{"key": "rmse", "value": 3.25, "step": 0}]},
        )
        assert logged.status_code < 300, logged.text
        seen = b.get(f"/api/tracking/runs/{run['id']}").json()
        assert seen["params"] == {"alpha": "0.5"}
        body = os.urandom(300_000)
        put = a.put(
            f"/api/tracking/runs/{run['id']}/artifacts/file",
            params={"path": "data/blob.bin"},
            content=body,
            headers={"content-type": "application/octet-stream"},
        )
        assert put.status_code == 201, put.text
        got = b.get(f"/api/tracking/runs/{run['id']}/artifacts/file", params={"path": "data/blob.bin"})
        assert got.status_code == 200 and got.content == body

    registered = replicas.registry(replicas.a).register_version("shared-model", package, actor="alice")
    seen_version = replicas.registry(replicas.b).get_version("shared-model", registered.version)
    assert (seen_version.version, seen_version.digest) == (1, registered.digest)
    copy = replicas.registry(replicas.b).package_dir("shared-model", 1)
    assert (copy / "quayside.yaml").read_bytes() == (package / "quayside.yaml").read_bytes()
    # Both wrote into the one shared root (the bucket, or the directory), not into their homes.
    stored = replicas.stored()
    assert any(key.endswith("data/blob.bin") for key in stored), stored
    assert any(key.endswith("quayside.yaml") for key in stored), stored


def test_twenty_concurrent_registrations_across_both_get_versions_1_to_20(replicas: Replicas, package: Path):
    replicas.registry(replicas.a).create_model("busy")
    servers = [replicas.a, replicas.b]

    def register(index: int) -> tuple[str, int]:
        server = servers[index % 2]
        version = replicas.registry(server).register_version("busy", package, actor=f"writer-{index}")
        return server.url, version.version

    with ThreadPoolExecutor(max_workers=REGISTRATIONS) as pool:
        results = list(pool.map(register, range(REGISTRATIONS)))

    assert sorted(version for _, version in results) == list(range(1, REGISTRATIONS + 1))
    assert {url for url, _ in results} == {replicas.a.url, replicas.b.url}
    for server in servers:
        listed = replicas.registry(server).list_versions("busy")
        assert sorted(v.version for v in listed) == list(range(1, REGISTRATIONS + 1))


def _scratch_entries(directory: Path, prefix: str) -> list[str]:
    if not directory.is_dir():
        return []
    return [entry.name for entry in directory.iterdir() if entry.name.startswith(prefix)]


def test_killing_one_replica_mid_upload_leaves_no_row_without_its_object_and_the_other_answers(
    replicas: Replicas, package: Path
):
    registry_a, registry_b = replicas.registry(replicas.a), replicas.registry(replicas.b)
    for _ in range(2):
        registry_a.register_version("crashy", package, actor="alice")
    tar = b"".join(iter_tar(package))
    with httpx.Client(base_url=replicas.b.url, timeout=CLIENT_TIMEOUT_S) as b:
        experiment = b.post("/api/tracking/experiments", json={"name": "crashy"}).json()
        run = b.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()

    release = threading.Event()
    failures: list[BaseException] = []

    def half_then_wait(body: bytes) -> Iterator[bytes]:
        yield body[: len(body) // 2]
        release.wait(CLIENT_TIMEOUT_S)
        yield body[len(body) // 2 :]

    def upload(method: str, url: str, body: bytes, **kwargs: Any) -> None:
        try:
            with httpx.Client(base_url=replicas.a.url, timeout=CLIENT_TIMEOUT_S) as a:
                a.request(method, url, content=half_then_wait(body), **kwargs)
        except httpx.TransportError as e:
            failures.append(e)

    uploads = [
        threading.Thread(
            target=upload,
            args=("POST", "/api/registry/models/crashy/versions", tar),
            kwargs={"params": {"actor": "alice"}, "headers": {"content-type": "application/x-tar"}},
        ),
        threading.Thread(
            target=upload,
            args=("PUT", f"/api/tracking/runs/{run['id']}/artifacts/file", os.urandom(2 << 20)),
            kwargs={"params": {"path": "half.bin"}, "headers": {"content-type": "application/octet-stream"}},
        ),
    ]
    for thread in uploads:
        thread.start()
    deadline = time.monotonic() + CLIENT_TIMEOUT_S
    # The registration's spool exists once its handler is reading the body: kill the replica then.
    while not _scratch_entries(replicas.scratch[0], "spool-") and time.monotonic() < deadline:
        time.sleep(0.02)  # polling for the upload to be under way
    assert _scratch_entries(replicas.scratch[0], "spool-"), "the upload never reached replica a"
    replicas.a.kill(signal.SIGKILL)
    release.set()
    for thread in uploads:
        thread.join(CLIENT_TIMEOUT_S)
    assert len(failures) == 2  # both uploads died with the replica

    # The other replica answers, and every version it lists has its package.
    with httpx.Client(base_url=replicas.b.url, timeout=CLIENT_TIMEOUT_S) as b:
        assert b.get("/health").status_code == 200
        assert b.get("/health/ready").status_code == 200
        artifacts = b.get(f"/api/tracking/runs/{run['id']}/artifacts").json()["artifacts"]
        assert [a["path"] for a in artifacts] == []
        half = b.get(f"/api/tracking/runs/{run['id']}/artifacts/file", params={"path": "half.bin"})
        assert half.status_code == 404
    listed = registry_b.list_versions("crashy")
    assert [v.version for v in listed] == [1, 2]
    for version in listed:
        copy = registry_b.package_dir("crashy", version.version)
        assert (copy / "quayside.yaml").read_bytes() == (package / "quayside.yaml").read_bytes()
    assert registry_b.register_version("crashy", package, actor="bob").version == 3

    # The killed replica's spool was left behind; its restart sweeps it (no living process holds it).
    replicas.a.start()
    assert _scratch_entries(replicas.scratch[0], "spool-") == []
    assert [v.version for v in replicas.registry(replicas.a).list_versions("crashy")] == [1, 2, 3]


# --- quayside server --workers N -----------------------------------------------------------------


@pytest.fixture
def two_workers(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    port = fixtures.free_port()
    env = fixtures.clean_env(
        QUAYSIDE_HOME=str(tmp_path), QUAYSIDE_DB_URL=f"sqlite:///{tmp_path / 'quayside.db'}"
    )
    process = subprocess.Popen(
        [fixtures.QUAYSIDE, "server", "--port", str(port), "--workers", "2"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_for_pids(url, process, want=2)
        yield url, process
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _pid_of_one_answer(url: str, timeout_s: float = 5) -> int | None:
    """The pid that answers ``/health`` on a connection of its own; None if none answers in time."""
    try:
        with httpx.Client(timeout=timeout_s) as http:
            return http.get(f"{url}/health").json()["pid"]
    except httpx.TransportError:
        return None


def _pids_answering(url: str, requests: int = 64) -> set[int]:
    """The pids in the answers of ``requests`` concurrent requests, each on a connection of its own."""
    with ThreadPoolExecutor(max_workers=8) as pool:
        return {pid for pid in pool.map(lambda _: _pid_of_one_answer(url), range(requests)) if pid}


def _wait_for_pids(url: str, process: subprocess.Popen[bytes], want: int) -> set[int]:
    seen: set[int] = set()
    deadline = time.monotonic() + WORKERS_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"quayside server exited: {process.stderr.read().decode()}")  # type: ignore[union-attr]
        # One probe until a worker answers (the parent holds the port from the start, so a
        # connection waits in its backlog until then), then many at once.
        pid = _pid_of_one_answer(url, timeout_s=1)
        if pid is not None:
            seen |= {pid} | _pids_answering(url)
        if len(seen) >= want:
            return seen
        time.sleep(0.1)  # polling for the workers to be up, not waiting for a result
    raise AssertionError(f"only pids {seen} answered on {url}")


def _parent_of(pid: int) -> int:
    status = Path(f"/proc/{pid}/status").read_text()
    return int(next(line.split()[1] for line in status.splitlines() if line.startswith("PPid:")))


def test_two_workers_answer_on_one_port_and_write_into_the_one_sqlite_database(two_workers):
    url, process = two_workers
    pids = _wait_for_pids(url, process, want=2)
    assert len(pids) == 2 and process.pid not in pids
    assert {_parent_of(pid) for pid in pids} == {process.pid}

    def create(index: int) -> int:
        with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as http:
            response = http.post("/api/tracking/experiments", json={"name": f"exp-{index}"})
            assert response.status_code == 201, response.text
            return response.json()["id"]

    with ThreadPoolExecutor(max_workers=8) as pool:
        created = list(pool.map(create, range(16)))
    assert len(set(created)) == 16
    for _ in range(2):  # read back on fresh connections, whichever worker answers
        with httpx.Client(base_url=url, timeout=CLIENT_TIMEOUT_S) as http:
            names = {e["name"] for e in http.get("/api/tracking/experiments").json()["experiments"]}
        assert {f"exp-{i}" for i in range(16)} <= names


@pytest.mark.parametrize("value", ["0", "-1", "1.5"])
def test_a_worker_count_that_is_not_a_whole_number_from_1_is_one_error_line(value, tmp_path: Path):
    result = subprocess.run(
        [fixtures.QUAYSIDE, "server", "--workers", value],
        env=fixtures.clean_env(QUAYSIDE_HOME=str(tmp_path)),
        capture_output=True,
        text=True,
        timeout=CLIENT_TIMEOUT_S,
    )
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        f"error: --workers takes a whole number of server processes, 1 or more, not {value!r}"
    ]
    assert not (tmp_path / "quayside.db").exists()  # refused before anything was opened
