"""Artifacts through a real ``quayside server``, on a local directory (SQLite) and on S3 (PostgreSQL).

Every kind of run artifact makes the round trip (a file, a directory, a logged model, an MLflow
logged model through MLflow's proxied artifact routes), downloads honour ``Range`` on both
download routes, a corrupted object is refused on read, and an artifact root the server cannot
use stops ``quayside server`` (and the local CLI) with one line.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import quayside
from quayside.config import Settings
from quayside.tracking.client import Client
from tests.db import fixtures
from tests.db.fixtures import QUAYSIDE, Server, clean_env, free_port

SERVER_START_TIMEOUT_S = 120
"""A server (an S3 root's imports boto3 and makes its clients) starts slowly on a loaded machine."""
LIMIT = 16 << 20
"""The servers' QUAYSIDE_MAX_ARTIFACT_BYTES here: room for objects larger than a download's first chunk."""
TRACKING = "/api/tracking"
MLFLOW = "/api/2.0/mlflow"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


@dataclass
class ArtifactServer:
    """A server, and the way behind its back to its objects."""

    kind: str
    server: Server
    s3_client: Any = None
    bucket: str = ""
    prefix: str = ""

    @property
    def url(self) -> str:
        return self.server.url

    def client(self, home: Path) -> Client:
        return Client(settings=Settings(home=home, tracking_uri=self.url))

    def corrupt(self, run_id: str, path: str) -> None:
        """Flip the first byte of an artifact in place, keeping its size and its recorded digest."""
        if self.kind == "local":
            file = self.server.home / "artifacts" / "runs" / run_id / path
            data = bytearray(file.read_bytes())
            data[0] ^= 0xFF
            file.write_bytes(bytes(data))
            return
        key = f"{self.prefix}/runs/{run_id}/{path}"
        stored = self.s3_client.get_object(Bucket=self.bucket, Key=key)
        data = bytearray(stored["Body"].read())
        data[0] ^= 0xFF
        self.s3_client.put_object(Bucket=self.bucket, Key=key, Body=bytes(data), Metadata=stored["Metadata"])

    def stored_keys(self, run_id: str) -> set[str]:
        if self.kind == "local":
            base = self.server.home / "artifacts" / "runs" / run_id
            return {p.relative_to(base).as_posix() for p in base.rglob("*") if p.is_file()} - {
                p.relative_to(base).as_posix() for p in base.rglob("*.quayside-sha256")
            }
        prefix = f"{self.prefix}/runs/{run_id}/"
        listed = self.s3_client.list_objects_v2(Bucket=self.bucket, Prefix=prefix).get("Contents", [])
        return {entry["Key"].removeprefix(prefix) for entry in listed}


def _start(server: Server) -> Server:
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(fixtures, "SERVER_START_TIMEOUT_S", SERVER_START_TIMEOUT_S)
        return server.start()


@pytest.fixture(scope="module", params=["local", "s3"])
def artifact_server(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ArtifactServer]:
    """A server on a local artifact directory and SQLite, then one on an S3 bucket and PostgreSQL."""
    home = tmp_path_factory.mktemp(f"artifact-server-{request.param}")
    settings = {"QUAYSIDE_MAX_ARTIFACT_BYTES": str(LIMIT)}
    if request.param == "local":
        server = _start(Server(home, f"sqlite:///{home / 'quayside.db'}", settings=settings))
        subject = ArtifactServer("local", server)
    else:
        endpoint = request.getfixturevalue("s3_session_endpoint")
        bucket = request.getfixturevalue("s3_session_bucket")
        prefix = f"streaming-{uuid.uuid4().hex[:8]}"
        settings |= {
            "QUAYSIDE_ARTIFACT_ROOT": f"s3://{bucket}/{prefix}",
            "QUAYSIDE_S3_ENDPOINT_URL": endpoint,
        }
        database = request.getfixturevalue("postgres_database_url")
        server = _start(Server(home, database, settings=settings))
        client = request.getfixturevalue("s3_session_client")
        subject = ArtifactServer("s3", server, client, bucket, prefix)
    try:
        yield subject
    finally:
        server.stop()


@pytest.fixture
def http(artifact_server: ArtifactServer) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=artifact_server.url, timeout=60) as client:
        yield client


def new_run(http: httpx.Client) -> str:
    experiment = http.post(f"{TRACKING}/experiments", json={"name": f"e-{uuid.uuid4().hex[:8]}"}).json()
    return http.post(f"{TRACKING}/runs", json={"experiment_id": experiment["id"]}).json()["id"]


def upload(http: httpx.Client, run_id: str, path: str, data: bytes) -> httpx.Response:
    return http.put(f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": path}, content=data)


def download(http: httpx.Client, run_id: str, path: str, **headers: str) -> httpx.Response:
    return http.get(f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": path}, headers=headers)


# --- round trips ----------------------------------------------------------------------------------


def test_files_and_directories_make_the_round_trip_byte_for_byte(
    artifact_server: ArtifactServer, tmp_path: Path
):
    client = artifact_server.client(tmp_path / "client")
    run = client.create_run(f"e-{uuid.uuid4().hex[:8]}")
    tree = tmp_path / "tree"
    (tree / "nested" / "deeper").mkdir(parents=True)
    files = {
        "a.bin": os.urandom(3 * (1 << 20) + 17),  # more than one chunk of the store and the server
        "nested/b.txt": b"hello\n",
        "nested/deeper/empty.dat": b"",
    }
    for name, data in files.items():
        (tree / name).write_bytes(data)
    client.log_artifacts(run.id, tree, "tree")
    single = tmp_path / "single.json"
    single.write_text('{"accuracy": 0.9}')
    client.log_artifact(run.id, single)

    assert artifact_server.stored_keys(run.id) == {f"tree/{name}" for name in files} | {"single.json"}
    listed = {a.path: a.size for a in client.list_artifacts(run.id, "tree", recursive=True)}
    assert listed == {
        "tree/a.bin": len(files["a.bin"]),
        "tree/nested": None,
        "tree/nested/b.txt": 6,
        "tree/nested/deeper": None,
        "tree/nested/deeper/empty.dat": 0,
    }
    copy = client.download_artifacts(run.id, "tree", tmp_path / "down")
    assert {p.relative_to(copy).as_posix(): p.read_bytes() for p in copy.rglob("*") if p.is_file()} == files
    one = client.download_artifacts(run.id, "single.json", tmp_path / "one")
    assert one.read_text() == '{"accuracy": 0.9}'


def test_a_logged_model_makes_the_round_trip_and_predicts_the_same(
    artifact_server: ArtifactServer, iris_classifier, iris, tmp_path: Path
):
    X, _ = iris
    client = artifact_server.client(tmp_path / "client")
    run = client.create_run(f"e-{uuid.uuid4().hex[:8]}")
    logged = client.log_model(run.id, iris_classifier, "model", input_example=X.head(5))
    assert client.get_run(run.id).models == (logged,)
    assert "model/quayside.yaml" in artifact_server.stored_keys(run.id)
    copy = client.download_artifacts(run.id, "model", tmp_path / "down")
    package = quayside.load_model(copy, trust=True)  # our own pickle
    assert package.predict(X.head(20))["label"].tolist() == iris_classifier.predict(X.head(20)).tolist()


def test_an_mlflow_logged_model_goes_up_and_comes_down_through_mlflows_proxied_routes(http: httpx.Client):
    run_id = new_run(http)
    experiment_id = http.get(f"{TRACKING}/runs/{run_id}").json()["experiment_id"]
    body = {"experiment_id": str(experiment_id), "source_run_id": run_id, "name": "clf"}
    model = http.post(f"{MLFLOW}/logged-models", json=body).json()["model"]["info"]
    folder = model["artifact_uri"].removeprefix("mlflow-artifacts:/")
    files = {"MLmodel": b"flavors:\n  python_function: {}\n", "model.pkl": os.urandom(2 * (1 << 20) + 5)}
    for name, data in files.items():
        assert http.put(f"{MLFLOW_ARTIFACTS}/{folder}/{name}", content=data).status_code == 200
    ready = http.patch(f"{MLFLOW}/logged-models/{model['model_id']}", json={"status": "LOGGED_MODEL_READY"})
    assert ready.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"

    listed = http.get(MLFLOW_ARTIFACTS, params={"path": folder}).json()["files"]
    assert {f["path"]: f.get("file_size") for f in listed} == {n: len(d) for n, d in files.items()}
    for name, data in files.items():
        answer = http.get(f"{MLFLOW_ARTIFACTS}/{folder}/{name}")
        assert answer.status_code == 200 and answer.content == data
    tail = http.get(f"{MLFLOW_ARTIFACTS}/{folder}/model.pkl", headers={"Range": "bytes=-100"})
    assert tail.status_code == 206 and tail.content == files["model.pkl"][-100:]


def test_the_web_ui_previews_an_artifact_and_shows_an_image_from_the_store(http: httpx.Client):
    run_id = new_run(http)
    png = b"\x89PNG\r\n\x1a\n" + os.urandom(200)
    assert upload(http, run_id, "notes/readme.txt", b"<b>first line</b>\n").status_code == 201
    assert upload(http, run_id, "plot.png", png).status_code == 201
    page = http.get(f"/runs/{run_id}/artifacts/view", params={"path": "notes/readme.txt"})
    assert page.status_code == 200 and "&lt;b&gt;first line&lt;/b&gt;" in page.text
    image = http.get(f"/runs/{run_id}/artifacts/image", params={"path": "plot.png"})
    assert image.status_code == 200 and image.content == png
    assert image.headers["content-type"] == "image/png" and "content-disposition" not in image.headers
    assert http.get(f"/runs/{run_id}/artifacts/view", params={"path": "missing.txt"}).status_code == 404


# --- ranges ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("route", ["quayside", "mlflow"])
def test_downloads_honour_single_byte_ranges_and_refuse_unsatisfiable_ones(http: httpx.Client, route: str):
    run_id = new_run(http)
    data = os.urandom((1 << 20) + 4321)
    assert upload(http, run_id, "data/blob.bin", data).status_code == 201
    size = len(data)

    def get(range_header: str | None = None) -> httpx.Response:
        headers = {"Range": range_header} if range_header else {}
        if route == "quayside":
            return download(http, run_id, "data/blob.bin", **headers)
        return http.get(f"{MLFLOW_ARTIFACTS}/{run_id}/data/blob.bin", headers=headers)

    whole = get()
    assert whole.status_code == 200 and whole.content == data
    assert whole.headers["accept-ranges"] == "bytes" and whole.headers["content-length"] == str(size)
    assert whole.headers["content-disposition"] == 'attachment; filename="blob.bin"'
    cases = {
        "bytes=10-19": (10, 20),
        f"bytes={size - 5}-": (size - 5, size),
        "bytes=-7": (size - 7, size),
        f"bytes=1000-{size + 50}": (1000, size),  # a last byte past the end is the end
        "bytes=-999999999": (0, size),
    }
    for header, (start, end) in cases.items():
        part = get(header)
        assert part.status_code == 206, header
        assert part.content == data[start:end], header
        assert part.headers["content-range"] == f"bytes {start}-{end - 1}/{size}", header
        assert part.headers["content-length"] == str(end - start), header
    for header in (f"bytes={size}-", f"bytes={size + 10}-{size + 20}", "bytes=-0"):
        refused = get(header)
        assert refused.status_code == 416, header
        assert refused.headers["content-range"] == f"bytes */{size}", header
    # What is not one byte range is ignored, as HTTP allows: the whole object.
    for header in ("bytes=0-1,5-6", "items=0-1", "bytes=9-3"):
        assert get(header).status_code == 200 and get(header).content == data, header


# --- damage ---------------------------------------------------------------------------------------


def test_a_corrupted_object_is_refused_on_read_with_a_clear_status(
    artifact_server: ArtifactServer, http: httpx.Client, tmp_path: Path
):
    run_id = new_run(http)
    data = b"weights " * 1000
    assert upload(http, run_id, "small.bin", data).status_code == 201
    artifact_server.corrupt(run_id, "small.bin")
    for answer in (
        download(http, run_id, "small.bin"),
        http.get(f"{MLFLOW_ARTIFACTS}/{run_id}/small.bin"),
    ):
        assert answer.status_code == 422
        assert "sha256" in answer.text and "small.bin" in answer.text
        assert data not in answer.content
    assert download(http, run_id, "small.bin", Range="bytes=0-3").status_code == 206  # a range is not checked


def test_a_corrupted_large_object_is_cut_short_never_served_whole(
    artifact_server: ArtifactServer, http: httpx.Client, tmp_path: Path
):
    run_id = new_run(http)
    data = os.urandom(3 * (1 << 20))
    assert upload(http, run_id, "large.bin", data).status_code == 201
    artifact_server.corrupt(run_id, "large.bin")
    received = bytearray()
    with (
        pytest.raises(httpx.RemoteProtocolError),
        http.stream("GET", f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "large.bin"}) as r,
    ):
        assert r.status_code == 200
        for chunk in r.iter_bytes():
            received += chunk
    assert len(received) < len(data)
    client = artifact_server.client(tmp_path / "client")
    with pytest.raises(Exception):  # noqa: B017 - the client's own error for a cut download
        client.download_artifacts(run_id, "large.bin", tmp_path / "down")
    assert not (tmp_path / "down" / "large.bin").exists()
    # The server is fine after it, and the undamaged objects still read.
    assert upload(http, run_id, "ok.bin", b"ok").status_code == 201
    assert download(http, run_id, "ok.bin").content == b"ok"


def test_an_upload_over_the_limit_is_refused_and_leaves_nothing(
    artifact_server: ArtifactServer, http: httpx.Client
):
    run_id = new_run(http)

    def body() -> Iterator[bytes]:
        for _ in range(LIMIT // (1 << 20) + 1):
            yield b"x" * (1 << 20)

    answer = http.put(f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "big.bin"}, content=body())
    assert answer.status_code == 413
    assert artifact_server.stored_keys(run_id) == set()
    assert download(http, run_id, "big.bin").status_code == 404


def test_uploads_stream_through_with_their_digest_recorded(
    artifact_server: ArtifactServer, http: httpx.Client
):
    run_id = new_run(http)
    data = os.urandom(5 * (1 << 20) + 1)
    answer = http.put(
        f"{TRACKING}/runs/{run_id}/artifacts/file",
        params={"path": "streamed.bin"},
        content=iter([data[i : i + 65536] for i in range(0, len(data), 65536)]),
    )
    assert answer.status_code == 201 and answer.json()["size"] == len(data)
    got = download(http, run_id, "streamed.bin")
    assert hashlib.sha256(got.content).hexdigest() == hashlib.sha256(data).hexdigest()


# --- an artifact root that cannot be used ----------------------------------------------------------


def _refusal(command: list[str], tmp_path: Path, **settings: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(QUAYSIDE_HOME=str(tmp_path / "home"), **settings)
    return subprocess.run([QUAYSIDE, *command], env=env, capture_output=True, text=True, timeout=120)


def _one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode != 0
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("error: ") and "Traceback" not in result.stderr
    return lines[0]


def test_a_server_on_an_unknown_scheme_refuses_to_start_in_one_line(tmp_path: Path):
    port = str(free_port())
    line = _one_error_line(_refusal(["server", "--port", port], tmp_path, QUAYSIDE_ARTIFACT_ROOT="ftp://x"))
    assert "'ftp://'" in line and "s3://bucket" in line
    assert not (tmp_path / "home" / "quayside.db").exists()  # refused before the database is opened
    assert not any(p.name.startswith("ftp") for p in tmp_path.rglob("*"))


def test_a_server_on_an_unreachable_s3_endpoint_refuses_to_start_in_one_line(
    tmp_path: Path, s3_session_endpoint
):
    unreachable = f"http://127.0.0.1:{free_port()}"
    result = _refusal(
        ["server", "--port", str(free_port())],
        tmp_path,
        QUAYSIDE_ARTIFACT_ROOT="s3://no-such-endpoint-bucket/prefix",
        QUAYSIDE_S3_ENDPOINT_URL=unreachable,
    )
    line = _one_error_line(result)
    assert "S3 endpoint cannot be reached" in line
    assert os.environ["AWS_SECRET_ACCESS_KEY"] not in result.stderr


def test_a_server_on_a_missing_bucket_refuses_to_start_in_one_line(tmp_path: Path, s3_session_endpoint: str):
    result = _refusal(
        ["server", "--port", str(free_port())],
        tmp_path,
        QUAYSIDE_ARTIFACT_ROOT=f"s3://missing-{uuid.uuid4().hex[:8]}",
        QUAYSIDE_S3_ENDPOINT_URL=s3_session_endpoint,
    )
    assert "the bucket does not exist" in _one_error_line(result)


def test_the_local_cli_refuses_an_unknown_scheme_in_one_line(tmp_path: Path):
    line = _one_error_line(_refusal(["runs", "search"], tmp_path, QUAYSIDE_ARTIFACT_ROOT="gs://bucket/x"))
    assert "'gs://'" in line
