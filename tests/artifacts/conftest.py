"""A real S3 endpoint for the artifact stores: moto's ThreadedMotoServer on 127.0.0.1, reached over HTTP.

The server runs in a process of its own, so that what it holds (it keeps whole objects in
memory) does not count in the tests' tracemalloc figures, and so that it answers while the
test process is busy. Credentials are dummies set for the session; the instance-metadata
lookup is off, so boto3 never leaves 127.0.0.1 looking for credentials.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from quayside.artifacts import ArtifactStore, LocalArtifactStore, S3ArtifactStore
from quayside.artifacts.s3 import MIN_PART_SIZE

ACCESS_KEY = "quayside-test-access-key"
SECRET_KEY = "quayside-test-secret-key-never-shown"
REGION = "us-east-1"

_SERVER = """
import sys
from moto.server import ThreadedMotoServer

server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
server.start()
print(server.get_host_and_port()[1], flush=True)
sys.stdin.read()  # until the test session closes our stdin
server.stop()
"""


def aws_environment(env: pytest.MonkeyPatch) -> None:
    """Dummy credentials, a region, and nothing that could send boto3 anywhere but 127.0.0.1."""
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "QUAYSIDE_S3_ENDPOINT_URL"):
        env.delenv(name, raising=False)
    env.setenv("AWS_ACCESS_KEY_ID", ACCESS_KEY)
    env.setenv("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
    env.setenv("AWS_DEFAULT_REGION", REGION)
    env.setenv("AWS_EC2_METADATA_DISABLED", "true")
    env.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/quayside-test/credentials")
    env.setenv("AWS_CONFIG_FILE", "/nonexistent/quayside-test/config")


@contextmanager
def moto_server(log_path: Path, **environment: str) -> Iterator[str]:
    """Run moto's S3 server in a process of its own; yields ``http://127.0.0.1:PORT``."""
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-c", _SERVER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
            env={**os.environ, **environment},
        )
        try:
            line = server.stdout.readline()
            if not line.strip().isdigit():
                pytest.fail(f"moto's S3 server did not start: {log_path.read_text()[-2000:]}")
            yield f"http://127.0.0.1:{int(line)}"
        finally:
            server.stdin.close()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()


@pytest.fixture(scope="session")
def s3_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a moto S3 server, for the whole session (its log in a file)."""
    with pytest.MonkeyPatch.context() as env:
        aws_environment(env)
        with moto_server(tmp_path_factory.mktemp("moto") / "server.log") as endpoint:
            yield endpoint


@pytest.fixture
def s3_environment(s3_endpoint: str) -> Iterator[None]:
    """The session's AWS variables, back in place for a test that changed them."""
    with pytest.MonkeyPatch.context() as env:
        aws_environment(env)
        yield


@pytest.fixture(scope="session")
def s3_client(s3_endpoint: str) -> Any:
    """A plain boto3 client of the moto server: the tests' way behind a store's back."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session(
        aws_access_key_id=ACCESS_KEY, aws_secret_access_key=SECRET_KEY, region_name=REGION
    ).client("s3", endpoint_url=s3_endpoint, config=Config(s3={"addressing_style": "path"}))


@pytest.fixture
def bucket(s3_client: Any) -> Iterator[str]:
    """A new, empty bucket for one test, emptied and removed after it."""
    name = f"quayside-{uuid.uuid4().hex[:16]}"
    s3_client.create_bucket(Bucket=name)
    yield name
    for upload in s3_client.list_multipart_uploads(Bucket=name).get("Uploads", []):
        s3_client.abort_multipart_upload(Bucket=name, Key=upload["Key"], UploadId=upload["UploadId"])
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=name):
        for entry in page.get("Contents", []):
            s3_client.delete_object(Bucket=name, Key=entry["Key"])
    s3_client.delete_bucket(Bucket=name)


@dataclass
class StoreUnderTest:
    """A store, and the way behind its back to alter what it holds and to see what a write left."""

    kind: str
    store: ArtifactStore
    root: Path | None = None
    client: Any = None
    bucket: str = ""
    calls: list[str] = field(default_factory=list)
    """The S3 operations the store's client made (``PutObject``, ``UploadPart``, ...)."""

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Put other bytes under ``key`` behind the store's back, keeping what it recorded."""
        if self.kind == "local":
            (self.root / key).write_bytes(data)
            return
        name = f"{self.store.prefix}/{key}"
        metadata = self.client.head_object(Bucket=self.bucket, Key=name)["Metadata"]
        self.client.put_object(Bucket=self.bucket, Key=name, Body=data, Metadata=metadata)

    def leftovers(self) -> list[str]:
        """What writes left that is not an object: temporary files, open uploads, staging objects."""
        if self.kind == "local":
            scratch = self.root / ".quayside-tmp"
            return sorted(p.name for p in scratch.iterdir()) if scratch.is_dir() else []
        uploads = self.client.list_multipart_uploads(Bucket=self.bucket).get("Uploads", [])
        names = [f"upload {u['Key']}" for u in uploads]
        listed = self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])
        return names + [entry["Key"] for entry in listed if "/.quayside-tmp/" in entry["Key"]]

    def everything(self) -> list[str]:
        """Every file under the root, or every object in the bucket, whatever made it."""
        if self.kind == "local":
            if not self.root.exists():
                return []
            return sorted(p.relative_to(self.root).as_posix() for p in self.root.rglob("*") if p.is_file())
        return [e["Key"] for e in self.client.list_objects_v2(Bucket=self.bucket).get("Contents", [])]


@pytest.fixture
def s3_subject(s3_endpoint: str, bucket: str, s3_client: Any) -> StoreUnderTest:
    """A prefix of a new bucket on the moto server, with 5 MiB parts; its client's calls are recorded."""
    store = S3ArtifactStore(bucket, "team/artifacts", endpoint_url=s3_endpoint, part_size=MIN_PART_SIZE)
    subject = StoreUnderTest("s3", store, client=s3_client, bucket=bucket)
    store._client.meta.events.register("before-call.s3", lambda model, **_: subject.calls.append(model.name))
    return subject


@pytest.fixture(params=["local", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path) -> StoreUnderTest:
    """Each store in turn: a local directory, and a prefix of a bucket on the moto server."""
    if request.param == "local":
        root = tmp_path / "artifacts"
        return StoreUnderTest("local", LocalArtifactStore(root), root=root)
    return request.getfixturevalue("s3_subject")
