"""The package cache: one download per digest, verified before it is kept, safe under concurrent fills;
and the resolutions that use it (``models:/`` on an S3 artifact root, ``runs:/``) download once."""

from __future__ import annotations

import shutil
import threading
from pathlib import Path

import pytest

import quayside
from quayside import save_model
from quayside.artifacts.cache import PackageCache
from quayside.config import Settings
from quayside.errors import PackageIntegrityError, UnavailableError, UsageError
from quayside.packager.manifest import PackageReader, read_manifest
from quayside.registry.store import RegistryStore
from quayside.tracking.store import TrackingStore
from tests.artifacts.conftest import aws_environment, moto_server

FEATURES = ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("cache") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(5))
    return path


def copier(package: Path, calls: list[Path]):
    def download(folder: Path) -> None:
        calls.append(folder)
        shutil.copytree(package, folder)

    return download


def test_a_package_is_downloaded_once_per_digest_and_reused(tmp_path, package):
    cache = PackageCache(tmp_path / "cache")
    digest = read_manifest(package).digest()
    calls: list[Path] = []

    first = cache.fill(digest, copier(package, calls), source="a test")
    second = cache.fill(digest, copier(package, calls), source="a test")

    assert first == second == tmp_path / "cache" / digest
    assert len(calls) == 1
    assert PackageReader.open(first).manifest.digest() == digest
    assert (
        sorted(p.name for p in (tmp_path / "cache" / ".quayside-tmp").iterdir()) == []
    )  # no fill left behind


def test_a_damaged_download_is_refused_and_nothing_is_cached(tmp_path, package):
    cache = PackageCache(tmp_path / "cache")
    digest = read_manifest(package).digest()
    victim = read_manifest(package).files[0].path

    def damaged(folder: Path) -> None:
        shutil.copytree(package, folder)
        (folder / victim).write_bytes(b"not the model")

    with pytest.raises(
        PackageIntegrityError, match=rf"from the mirror is damaged: package file '{victim}' does not match"
    ):
        cache.fill(digest, damaged, source="the mirror")
    assert cache.get(digest) is None and not (tmp_path / "cache" / digest).exists()

    with pytest.raises(PackageIntegrityError, match="is not the one expected"):
        cache.fill("0" * 64, copier(package, []), source="the mirror")
    with pytest.raises(UsageError, match="is not a package digest"):
        cache.fill("../escape", copier(package, []), source="the mirror")


def test_a_cached_copy_edited_by_hand_is_downloaded_again(tmp_path, package):
    cache = PackageCache(tmp_path / "cache")
    digest = read_manifest(package).digest()
    calls: list[Path] = []
    cached = cache.fill(digest, copier(package, calls), source="a test")
    manifest = cached / "quayside.yaml"
    manifest.write_text(manifest.read_text().replace("name: ", "name: edited-", 1))

    again = cache.fill(digest, copier(package, calls), source="a test")
    assert len(calls) == 2 and again == cached and read_manifest(again).digest() == digest


def test_concurrent_fills_of_one_digest_each_see_a_whole_package(tmp_path, package):
    cache = PackageCache(tmp_path / "cache")
    digest = read_manifest(package).digest()
    fillers = 8
    barrier = threading.Barrier(fillers)
    results: list[Path] = []
    errors: list[BaseException] = []

    def download(folder: Path) -> None:
        barrier.wait()  # every filler is downloading at once: none has renamed yet
        shutil.copytree(package, folder)

    def fill() -> None:
        try:
            results.append(cache.fill(digest, download, source="a test"))
        except BaseException as e:  # collected for the assertion below
            errors.append(e)

    threads = [threading.Thread(target=fill) for _ in range(fillers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)

    assert errors == [] and results == [tmp_path / "cache" / digest] * fillers
    assert PackageReader.open(results[0]).manifest.digest() == digest
    assert [p.name for p in (tmp_path / "cache").iterdir() if p.name != ".quayside-tmp"] == [digest]
    assert list((tmp_path / "cache" / ".quayside-tmp").iterdir()) == []


def test_a_models_uri_on_an_s3_root_downloads_once_then_loads_with_the_endpoint_gone(
    tmp_path, package, monkeypatch
):
    aws_environment(monkeypatch)
    home = tmp_path / "home"
    with moto_server(tmp_path / "moto.log") as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
        for name, value in {
            "QUAYSIDE_HOME": str(home),
            "QUAYSIDE_ARTIFACT_ROOT": "s3://models/team",
            "QUAYSIDE_S3_ENDPOINT_URL": endpoint,
        }.items():
            monkeypatch.setenv(name, value)
        version = quayside.RegistryClient().register_model(package, "iris")
        first = quayside.load_model("models:/iris/1", trust=True)
    # The endpoint is gone: the second resolution reads the cache, keyed by the registered digest.
    second = quayside.load_model("models:/iris/1", trust=True)
    assert first.manifest.digest() == second.manifest.digest() == version.digest
    assert second.predict({c: [1.0] for c in FEATURES})["label"].shape == (1,)
    assert (home / "cache" / "packages" / version.digest / "quayside.yaml").is_file()

    shutil.rmtree(home / "cache" / "packages" / version.digest)
    with pytest.raises(UnavailableError):  # without the cache it needs the endpoint: it did download
        quayside.load_model("models:/iris/1", trust=True)


def test_a_runs_uri_fetches_only_the_manifest_once_the_package_is_cached(
    tmp_path, monkeypatch, iris_classifier, iris
):
    monkeypatch.setenv("QUAYSIDE_HOME", str(tmp_path / "home"))
    tracking = TrackingStore.from_settings(Settings(home=tmp_path / "home"))
    run = tracking.create_run(tracking.create_experiment("cache").id)
    quayside.Client().log_model(run.id, iris_classifier, "model", input_example=iris[0].head(5))
    fetched: list[str] = []
    copy = TrackingStore.download_artifacts

    def counted(self, run_id: str, path: str, destination: Path) -> Path:
        fetched.append(path)
        return copy(self, run_id, path, destination)

    monkeypatch.setattr(TrackingStore, "download_artifacts", counted)
    first = quayside.load_model(f"runs:/{run.id}/model", trust=True)
    second = quayside.load_model(f"runs:/{run.id}/model", trust=True)

    assert first.manifest.digest() == second.manifest.digest()
    assert fetched == ["model/quayside.yaml", "model", "model/quayside.yaml"]


def test_registry_store_on_s3_reads_a_version_from_the_cache_after_the_first_time(
    tmp_path, package, monkeypatch
):
    aws_environment(monkeypatch)
    with moto_server(tmp_path / "moto.log") as endpoint:
        import boto3

        boto3.client("s3", endpoint_url=endpoint).create_bucket(Bucket="models")
        monkeypatch.setenv("QUAYSIDE_S3_ENDPOINT_URL", endpoint)
        store = RegistryStore(
            f"sqlite:///{tmp_path / 'q.db'}", "s3://models/x", package_cache=tmp_path / "cache"
        )
        gets: list[str] = []
        store.artifacts._client.meta.events.register(  # type: ignore[attr-defined]
            "before-call.s3.GetObject", lambda params, **_: gets.append(params["url_path"])
        )
        version = store.register_version("iris", package, actor="tester")
        path = store.package_dir("iris", 1)
        downloaded = len(gets)
        assert store.package_dir("iris", 1) == path == tmp_path / "cache" / version.digest
        assert (
            len(gets) == downloaded == len(read_manifest(package).files) + 1
        )  # once: every file and the manifest
