"""The image's view of the registry (:mod:`quayside.serving.registry_http`) on a real ``quayside server``.

What a version is fetched as, and what goes wrong: an unknown alias, a registry that is down,
a download whose package is not the one the registry recorded. Then the image's entry point
(``python -m quayside.serving``, as a container runs it) following an alias without Docker.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import httpx
import numpy as np
import pytest
import yaml

import quayside
from quayside.errors import NotFoundError, PackageIntegrityError, UnavailableError, UsageError
from quayside.packager.manifest import MANIFEST_NAME
from quayside.serving import registry_http
from quayside.serving.registry_http import HttpRegistry, is_fixed, parse_moving_uri
from tests.serving.conftest import free_port
from tests.serving.registry_versions import expected


def test_uris_are_read_as_the_rest_api_asks_for_them():
    assert parse_moving_uri("models:/churn@champion").path == "/aliases/champion"
    assert parse_moving_uri("models:/churn/latest").path == "/latest"
    assert parse_moving_uri("models:/churn/Production").path == "/latest?stage=production"
    assert parse_moving_uri("models:/churn/3").path == "/versions/3"
    assert parse_moving_uri("runs:/abc/model") is None and parse_moving_uri("/opt/model") is None
    assert is_fixed("models:/churn/3") and not is_fixed("models:/churn@champion")
    with pytest.raises(UsageError, match="say which version"):
        parse_moving_uri("models:/churn")


def test_a_version_is_fetched_once_per_digest_and_named(churn_registry, tmp_path, churn_packages):
    server, client = churn_registry
    http = HttpRegistry(server.url, cache_dir=tmp_path / "cache")
    assert http.current_version("models:/churn@champion") == "1"
    assert http.current_version("models:/churn/2") is None  # a fixed version never moves
    path, name, version = http.resolve("models:/churn@champion")
    assert (name, version) == ("churn", "1")
    assert path.parent == tmp_path / "cache"
    assert path.name == client.get_version("churn", 1).digest
    assert quayside.load_model(path).manifest.digest() == path.name
    marker = path / MANIFEST_NAME
    before = marker.stat().st_mtime_ns
    assert http.resolve("models:/churn/1")[0] == path  # the same digest: not downloaded again
    assert marker.stat().st_mtime_ns == before
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == [path.name]  # no staging left


def test_what_goes_wrong_is_one_clear_error(churn_registry, tmp_path, monkeypatch):
    server, _ = churn_registry
    http = HttpRegistry(server.url, cache_dir=tmp_path / "cache")
    with pytest.raises(NotFoundError, match="nobody"):
        http.current_version("models:/churn@nobody")
    with pytest.raises(UnavailableError, match="cannot reach the registry"):
        HttpRegistry(f"http://127.0.0.1:{free_port()}", cache_dir=tmp_path).current_version(
            "models:/churn@champion"
        )
    with pytest.raises(UsageError, match="http"):
        HttpRegistry("ftp://somewhere", cache_dir=tmp_path)

    # A download whose manifest is not the registered one (a changed file and its rewritten digest).
    original = registry_http.extract_tar

    def tampered(stream, destination, **kwargs):
        package = original(stream, destination, **kwargs)
        manifest = yaml.safe_load((package / MANIFEST_NAME).read_text())
        manifest["name"] = "someone-else"
        (package / MANIFEST_NAME).write_text(yaml.safe_dump(manifest))
        return package

    monkeypatch.setattr(registry_http, "extract_tar", tampered)
    with pytest.raises(PackageIntegrityError, match=r"not the .* the registry recorded"):
        http.resolve("models:/churn/2")
    assert not (tmp_path / "cache" / MANIFEST_NAME).exists()
    assert [p.name for p in (tmp_path / "cache").iterdir()] == []


def test_the_image_entry_point_follows_an_alias(churn_registry, churn_packages, tmp_path, churn_rows):
    server, client = churn_registry
    client.set_alias("churn", "champion", 1)
    port = free_port()
    log = (tmp_path / "serving.log").open("w")
    process = subprocess.Popen(
        [sys.executable, "-m", "quayside.serving", str(churn_packages[1]), "--port", str(port), "--quiet"],
        env={
            **os.environ,
            "GRPC_PORT": "0",
            "MODEL_SOURCE": "models:/churn@champion",
            "MODEL_VERSION": "1",
            "QUAYSIDE_REGISTRY_URI": server.url,
            "FOLLOW_INTERVAL": "0.2",
            "TMPDIR": str(tmp_path),
        },
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while not _answers(url):
            assert process.poll() is None and time.monotonic() < deadline, (
                tmp_path / "serving.log"
            ).read_text()
            time.sleep(0.1)
        assert "following models:/churn@champion" in (tmp_path / "serving.log").read_text()
        client.set_alias("churn", "champion", 2)
        while _version(url) != "2":
            assert time.monotonic() < deadline + 30, (tmp_path / "serving.log").read_text()
            time.sleep(0.1)
        body = {
            "inputs": [
                {
                    "name": "input",
                    "datatype": "FP32",
                    "shape": list(churn_rows.shape),
                    "data": churn_rows.ravel().tolist(),
                }
            ]
        }
        document = httpx.post(f"{url}/v2/models/churn/infer", json=body, timeout=10).json()
        wanted = expected(churn_packages, 2, churn_rows)
        labels = next(output for output in document["outputs"] if output["name"] == "label")
        assert np.array_equal(np.asarray(labels["data"]), wanted)
        assert (
            tmp_path / "quayside-models" / client.get_version("churn", 2).digest / MANIFEST_NAME
        ).is_file()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        client.set_alias("churn", "champion", 1)


def _answers(url: str) -> bool:
    try:
        return httpx.get(f"{url}/v2/health/ready", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


def _version(url: str) -> str:
    return httpx.get(f"{url}/v2/models/churn", timeout=5).json()["versions"][0]
