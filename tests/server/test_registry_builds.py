"""Build records over the registry's REST API, as ``quayside build`` and scripts meet them on a real server.

``POST /api/registry/models/NAME/versions/VERSION/builds`` takes the document ``quayside build``
sends (the actor, without auth, in the query, as for the other routes whose body is a
document); the answers are the record judged by the policy in force, and errors are the
server's ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from quayside import RegistryClient, save_model
from quayside.config import Settings
from quayside.registry.builds import BuildRecord
from quayside.registry.rest import API_PREFIX
from tests.db.fixtures import Server
from tests.registry.builds import IMAGE_ID, REPO_DIGEST, build_document


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("builds-rest") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(5))
    return path


@pytest.fixture
def version(sqlite_server: Server, package: Path, tmp_path: Path) -> tuple[RegistryClient, str, str]:
    """A model with one version on the server: the client, the version's builds URL and its package digest."""
    client = RegistryClient(
        settings=Settings(home=tmp_path / "home", tracking_uri=sqlite_server.url, actor="ci")
    )
    name = f"built-{uuid.uuid4().hex[:8]}"
    registered = client.register_model(package, name)
    url = f"{sqlite_server.url}{API_PREFIX}/models/{name}/versions/1/builds"
    return client, url, registered.digest


def test_a_build_is_posted_listed_and_read_over_http(version):
    client, url, digest = version
    document = build_document(digest, repo_digest=REPO_DIGEST, budget="cold_start_s<=3")

    created = httpx.post(url, json=document, params={"actor": "builder"})

    assert created.status_code == 201, created.text
    body = created.json()
    assert (body["package_digest"], body["image_id"], body["recorded_by"]) == (digest, IMAGE_ID, "builder")
    assert (body["smoke"], body["reference"], body["budget"], body["qualifies"]) == (
        "passed",
        REPO_DIGEST,
        "cold_start_s<=3",
        True,
    )
    assert body["figures"] == {"image_mb": 123.456789, "cold_start_s": 1.8, "first_inference_ms": 12.5}

    listed = httpx.get(url)
    assert listed.status_code == 200 and listed.json() == {"builds": [body]}
    one = httpx.get(f"{url}/{body['id']}")
    assert one.status_code == 200 and one.json() == body
    assert client.build_record(body["model"], 1, body["id"]) == BuildRecord.from_dict(body)


def test_the_answers_are_judged_by_the_policy_in_force(version):
    client, url, digest = version
    record = httpx.post(url, json=build_document(digest, size_bytes=300_000_000)).json()
    client.set_policy(record["model"], budget="image_mb<=200")
    judged = httpx.get(f"{url}/{record['id']}").json()
    assert (judged["passed"], judged["problems"]) == (False, ["missed image_mb<=200 (measured 300)"])
    assert judged["verdict"]["objectives"][0]["measured"] == 300.0


def test_bad_documents_and_unknown_builds_are_errors_a_caller_can_act_on(version):
    _, url, digest = version
    wrong = httpx.post(url, json=build_document(digest) | {"image_id": "latest"})
    assert wrong.status_code == 400
    assert wrong.json()["error"] == {
        "code": "bad_request",
        "message": "the build record field 'image_id' must be sha256:<64 hex digits>, not 'latest'",
    }
    other = httpx.post(url, json=build_document("0" * 64))
    assert other.status_code == 400 and "holds package 000000000000" in other.json()["error"]["message"]
    not_an_object = httpx.post(url, json=[1, 2])
    assert not_an_object.status_code == 400 and not_an_object.json()["error"]["code"] == "invalid_request"

    missing = httpx.get(f"{url}/nosuchbuild")
    assert missing.status_code == 404 and "has no build 'nosuchbuild'" in missing.json()["error"]["message"]
    assert httpx.get(url.replace("/versions/1/", "/versions/9/")).status_code == 404
    assert httpx.get(url).json() == {"builds": []}
