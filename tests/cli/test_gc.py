"""``quayside gc``: a crash between an object and its row leaves an orphan that gc finds, never a dangling row.

The crash is real: a subprocess stores a package copy (or a report's files) through the artifact
store and is killed (``os._exit``) before the row is inserted, as a ``kill -9`` between the two would.
Run on a local artifact root and on an S3 bucket (moto's server, over HTTP).
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from quayside import save_model
from quayside.artifacts import ArtifactStore, LocalArtifactStore
from quayside.config import Settings
from quayside.errors import NotFoundError
from quayside.packager.manifest import PackageReader
from quayside.registry.store import RegistryStore
from quayside.tracking.store import TrackingStore
from tests.artifacts.conftest import bucket, s3_client, s3_endpoint, s3_environment  # noqa: F401  (fixtures)
from tests.db.fixtures import clean_env

QUAYSIDE = str(Path(sys.executable).parent / "quayside")
REPO = Path(__file__).resolve().parents[2]
KILLED = 17

CRASH = """
import os, sys
from quayside import scratch
from quayside.config import load_settings
from quayside.registry.store import RegistryStore
from tests.registry.reports import HTML, report_document

settings = load_settings()
store = RegistryStore.from_settings(settings)
what, name, argument = sys.argv[1:]


def then_die(write):
    def written_then_killed(*args, **kwargs):
        write(*args, **kwargs)
        if settings.artifact_root_is_local:  # and a write in progress, which no process holds any more
            leftover = scratch.TempFile(settings.artifact_dir, "artifact")
            leftover.handle.write(b"half an upload")
            leftover.handle.flush()
        os._exit(17)  # between the objects and the row, as a kill -9 would

    return written_then_killed


if what == "register":
    store.packages.add = then_die(store.packages.add)
    store.register_version(name, argument, actor="crash")
else:
    store.reports.write = then_die(store.reports.write)
    store.add_loadtest_report(name, 1, report_document(argument), HTML, actor="crash")
raise SystemExit("the row was written: the crash did not happen")
"""


@dataclass
class Root:
    """An artifact root and database as a user's environment names them."""

    settings: Settings
    env: dict[str, str]

    def registry(self) -> RegistryStore:
        return RegistryStore.from_settings(self.settings)

    def store(self) -> ArtifactStore:
        return self.registry().artifacts

    def crash(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", CRASH, *args],
            env=self.env,
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def gc(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [QUAYSIDE, "gc", *args], env=self.env, capture_output=True, text=True, timeout=120
        )


@pytest.fixture(params=["local", "s3"])
def root(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Root:
    home = tmp_path / "home"
    values: dict[str, Any] = {"home": home, "db_url": f"sqlite:///{tmp_path / 'quayside.db'}"}
    env = clean_env(QUAYSIDE_HOME=str(home), QUAYSIDE_DB_URL=values["db_url"])
    if request.param == "s3":
        request.getfixturevalue("s3_environment")
        endpoint = request.getfixturevalue("s3_endpoint")
        values["artifact_root"] = f"s3://{request.getfixturevalue('bucket')}/team"
        monkeypatch.setenv("QUAYSIDE_S3_ENDPOINT_URL", endpoint)
        env |= {k: v for k, v in os.environ.items() if k.startswith("AWS_")}  # the dummy credentials
        env |= {"QUAYSIDE_ARTIFACT_ROOT": values["artifact_root"], "QUAYSIDE_S3_ENDPOINT_URL": endpoint}
    return Root(Settings(**values), env)


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("gc") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(5))
    return path


def keys(store: ArtifactStore, prefix: str) -> dict[str, int]:
    return {info.key: info.size for info in store.list(prefix)}


def test_a_crash_between_object_and_row_leaves_an_orphan_that_gc_lists_and_deletes(root, package):
    registry = root.registry()
    kept = registry.register_version("kept", package, actor="tester")
    digest = kept.digest
    crashed = root.crash("register", "lost", str(package))
    assert crashed.returncode == KILLED, crashed.stderr
    reported = root.crash("report", "kept", digest)
    assert reported.returncode == KILLED, reported.stderr

    # No dangling row: neither the version nor the report was recorded.
    with pytest.raises(NotFoundError, match="no registered model named 'lost'"):
        registry.get_model("lost")
    assert registry.loadtest_reports("kept", 1) == []
    # A run's artifacts are kept while the run exists; those of a run that does not, are orphans.
    tracking = TrackingStore.from_settings(root.settings)
    run = tracking.create_run(tracking.create_experiment(f"gc-{uuid.uuid4().hex[:6]}").id)
    store = root.store()
    store.put(f"runs/{run.id}/notes.txt", io.BytesIO(b"a live run's file"))
    store.put(f"runs/{uuid.uuid4().hex}/model.pkl", io.BytesIO(b"a deleted run's file"))

    orphans = keys(store, "registry/lost") | keys(store, "loadtests/kept")
    orphans |= {k: v for k, v in keys(store, "runs").items() if not k.startswith(f"runs/{run.id}/")}
    assert len(orphans) == len(PackageReader.open(package).manifest.files) + 1 + 2 + 1  # package, report, run
    temporary = 2 if root.settings.artifact_root_is_local else 0  # one a crashed writer, each

    young = root.gc()  # the default --min-age protects what was written a moment ago
    assert young.returncode == 0, young.stderr
    assert young.stdout.strip().splitlines()[-1] == "found 0 unreferenced objects (0 bytes)"

    listed = root.gc("--min-age", "0")
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.strip().splitlines()
    assert sorted(line.split()[1] for line in lines[:-1] if ".quayside-tmp/" not in line) == sorted(orphans)
    assert len(lines) - 1 == len(orphans) + temporary
    size = sum(orphans.values()) + temporary * len(b"half an upload")
    count = len(orphans) + temporary
    assert lines[-1] == (
        f"found {count} unreferenced objects ({size} bytes); dry run, nothing removed: pass --delete to remove them"
    )
    assert keys(store, "registry/lost")  # a dry run removes nothing

    deleted = root.gc("--min-age", "0", "--delete")
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.strip().splitlines()[-1] == f"removed {count} unreferenced objects ({size} bytes)"
    assert keys(store, "registry/lost") == {} and keys(store, "loadtests") == {}
    if isinstance(store, LocalArtifactStore):  # and no empty folders where the orphans lay
        assert not store.local_path("registry/lost").exists() and not store.local_path("loadtests").exists()
    assert list(keys(store, "runs")) == [f"runs/{run.id}/notes.txt"]
    # What rows refer to is untouched: the kept version still reads back whole.
    assert PackageReader.open(root.registry().package_dir("kept", 1)).manifest.digest() == digest
    again = root.gc("--min-age", "0")
    assert again.stdout.strip().splitlines()[-1] == "found 0 unreferenced objects (0 bytes)"


def test_gc_lists_an_s3_upload_a_dead_writer_left_open(root, package, request):
    if root.settings.artifact_root_is_local:
        pytest.skip("S3 only: a local root's leftovers are covered by the crash test")
    client = request.getfixturevalue("s3_client")
    bucket_name = root.settings.artifact_root.removeprefix("s3://").split("/")[0]
    upload = client.create_multipart_upload(Bucket=bucket_name, Key=f"team/.quayside-tmp/{uuid.uuid4().hex}")
    listed = root.gc("--min-age", "0")
    assert listed.returncode == 0, listed.stderr
    assert f"#{upload['UploadId']}" in listed.stdout
    assert listed.stdout.strip().splitlines()[-1].startswith("found 1 unreferenced object (0 bytes)")
    root.gc("--min-age", "0", "--delete")
    assert client.list_multipart_uploads(Bucket=bucket_name).get("Uploads", []) == []


def test_gc_refuses_to_work_through_a_server(tmp_path):
    env = clean_env(QUAYSIDE_HOME=str(tmp_path), QUAYSIDE_TRACKING_URI="http://127.0.0.1:9")
    answer = subprocess.run([QUAYSIDE, "gc"], env=env, capture_output=True, text=True, timeout=60)
    assert answer.returncode == 1
    assert answer.stderr.strip().startswith("error: quayside gc works on the database and artifact root")
    assert "Traceback" not in answer.stderr
