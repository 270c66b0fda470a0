"""Package copies and load-test reports round-trip through the artifact store, local or S3, digests checked.

The S3 store is moto's server over HTTP (tests/registry/conftest.py). A damaged object is refused
when it is read, with an error that says so, never handed out as other bytes.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quayside import RegistryClient
from quayside.artifacts import ArtifactStore, LocalArtifactStore
from quayside.config import Settings
from quayside.errors import PackageIntegrityError
from quayside.packager.manifest import MANIFEST_NAME, PackageReader, read_manifest
from quayside.registry.store import RegistryStore
from tests.db.fixtures import Server
from tests.registry.conftest import S3, unique
from tests.registry.reports import HTML, report_document


@dataclass
class Subject:
    kind: str
    registry: RegistryStore
    s3: S3 | None = None
    prefix: str = ""

    @property
    def store(self) -> ArtifactStore:
        return self.registry.artifacts

    def replace_bytes(self, key: str, data: bytes) -> None:
        """Other bytes under ``key``, behind the store's back (what it recorded stays)."""
        if isinstance(self.store, LocalArtifactStore):
            self.store.local_path(key).write_bytes(data)
            return
        assert self.s3 is not None
        client, name = self.s3.client(), f"{self.prefix}/{key}"
        metadata = client.head_object(Bucket=self.s3.bucket, Key=name)["Metadata"]
        client.put_object(Bucket=self.s3.bucket, Key=name, Body=data, Metadata=metadata)


@pytest.fixture(params=["local", "s3"])
def subject(request: pytest.FixtureRequest, tmp_path: Path, database_url: str) -> Subject:
    cache = tmp_path / "cache"
    if request.param == "local":
        return Subject("local", RegistryStore(database_url, tmp_path / "artifacts", package_cache=cache))
    s3: S3 = request.getfixturevalue("s3_settings")
    prefix = f"stores-{unique('p')}"
    return Subject("s3", RegistryStore(database_url, s3.root(prefix), package_cache=cache), s3, prefix)


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_a_package_round_trips_with_every_digest_checked(subject, packages):
    name = unique()
    version = subject.registry.register_version(name, packages[0], actor="tester")
    manifest = read_manifest(packages[0])

    (folder,) = {info.key.rsplit("/", 1)[0] for info in subject.store.list(f"registry/{name}")}
    stored = {
        info.key.removeprefix(f"{folder}/"): subject.store.stat(info.key)
        for info in subject.store.list(folder)
    }
    assert sorted(stored) == sorted([MANIFEST_NAME, *(entry.path for entry in manifest.files)])
    for entry in manifest.files:
        assert stored[entry.path].sha256 == entry.sha256 and stored[entry.path].size == entry.size
    assert stored[MANIFEST_NAME].sha256 == sha256((packages[0] / MANIFEST_NAME).read_bytes())

    directory = subject.registry.package_dir(name, 1)
    assert PackageReader.open(directory).manifest.digest() == version.digest == manifest.digest()
    for entry in manifest.files:
        assert (directory / entry.path).read_bytes() == (packages[0] / entry.path).read_bytes()
    if subject.kind == "s3":
        assert directory == subject.registry.packages.cache.path(version.digest)  # a verified download


def test_a_report_round_trips_with_its_digests_checked(subject, packages):
    name = unique()
    version = subject.registry.register_version(name, packages[0], actor="tester")
    record = subject.registry.add_loadtest_report(
        name, 1, report_document(version.digest), HTML, actor="tester"
    )

    folder = f"loadtests/{name}/1/{record.id}"
    document = subject.registry.loadtest_report(name, 1, record.id)
    assert (document["id"], document["record"]["id"], document["tested"]["package_digest"]) == (
        record.id,
        record.id,
        version.digest,
    )
    assert subject.registry.loadtest_report_page(name, 1, record.id) == HTML
    with subject.store.open(f"{folder}/report.json") as stream:
        data = stream.read()
    assert subject.store.stat(f"{folder}/report.json").sha256 == sha256(data)
    assert json.loads(data)["id"] == record.id
    assert subject.store.stat(f"{folder}/report.html").sha256 == sha256(HTML.encode())


def test_a_damaged_package_object_is_refused_on_read(subject, packages):
    name = unique()
    subject.registry.register_version(name, packages[0], actor="tester")
    (info,) = [i for i in subject.store.list(f"registry/{name}") if not i.key.endswith(MANIFEST_NAME)][:1]
    subject.replace_bytes(info.key, b"x" * info.size)  # same size, other bytes

    if subject.kind == "local":  # read where it lies: loading checks every file
        with pytest.raises(PackageIntegrityError, match="does not match its sha256"):
            PackageReader.open(subject.registry.package_dir(name, 1))
        return
    with pytest.raises(PackageIntegrityError, match="does not match the sha256 recorded when it was stored"):
        subject.registry.package_dir(name, 1)
    assert [
        p.name for p in (subject.registry.packages.cache.root).iterdir() if p.name != ".quayside-tmp"
    ] == []


def test_a_damaged_report_object_is_refused_on_read(subject, packages):
    name = unique()
    version = subject.registry.register_version(name, packages[0], actor="tester")
    record = subject.registry.add_loadtest_report(
        name, 1, report_document(version.digest), HTML, actor="tester"
    )
    key = f"loadtests/{name}/1/{record.id}/report.html"
    subject.replace_bytes(key, HTML.replace("<", "[").encode())

    with pytest.raises(PackageIntegrityError, match="does not match the sha256 recorded when it was stored"):
        subject.registry.loadtest_report_page(name, 1, record.id)


@pytest.fixture(scope="module")
def s3_server(
    registry_s3: S3, postgres_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Server]:
    """A ``quayside server`` on PostgreSQL with its artifacts in the S3 bucket."""
    with pytest.MonkeyPatch.context() as env:
        from tests.artifacts.conftest import aws_environment

        aws_environment(env)  # inherited by the server process
        settings = {
            "QUAYSIDE_ARTIFACT_ROOT": registry_s3.root("server"),
            "QUAYSIDE_S3_ENDPOINT_URL": registry_s3.endpoint,
        }
        server = Server(
            tmp_path_factory.mktemp("s3-server"), postgres_database_url, settings=settings
        ).start()
        yield server
        server.stop()


def test_through_a_server_on_s3_a_package_and_a_report_round_trip(s3_server, registry_s3, packages, tmp_path):
    client = RegistryClient(settings=Settings(home=tmp_path / "client", tracking_uri=s3_server.url))
    name = unique()
    version = client.register_model(packages[1], name, actor="tester")
    record = client.add_loadtest_report(name, 1, report_document(version.digest), HTML, actor="tester")

    listed: Any = registry_s3.client().list_objects_v2(
        Bucket=registry_s3.bucket, Prefix=f"server/registry/{name}/"
    )
    assert len(listed["Contents"]) == len(read_manifest(packages[1]).files) + 1
    assert not (s3_server.home / "artifacts" / "registry").exists()  # nothing went to a local directory
    resolved = client.resolve(f"models:/{name}/1")
    assert PackageReader.open(resolved.path).manifest.digest() == version.digest
    assert resolved.path == tmp_path / "client" / "cache" / "packages" / version.digest
    assert client.loadtest_report_page(name, 1, record.id) == HTML
    assert client.loadtest_report(name, 1, record.id)["record"]["id"] == record.id
