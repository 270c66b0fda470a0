"""Against other sites' pages, in every mode: Host allow-list, body types, no CORS, artifacts as downloads.

On a real ``quayside server``; each refused request is followed by a read of the store
that shows nothing changed.
"""

from __future__ import annotations

import io
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from quayside import save_model
from tests.db.fixtures import Server

TRACKING, REGISTRY, MLFLOW = "/api/tracking", "/api/registry", "/api/2.0/mlflow"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"
EVIL = {"Host": "evil.example"}
PLAIN = {"content-type": "text/plain"}
FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    home = tmp_path_factory.mktemp("hardening")
    started = Server(home, f"sqlite:///{home / 'quayside.db'}").start()
    yield started
    started.stop()


@pytest.fixture(scope="module")
def http(server: Server) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server.url, timeout=60) as client:
        yield client


@pytest.fixture(scope="module")
def run_id(http: httpx.Client) -> str:
    experiment = http.post(f"{TRACKING}/experiments", json={"name": "hardening", "exist_ok": True}).json()
    return http.post(f"{TRACKING}/runs", json={"experiment_id": experiment["id"]}).json()["id"]


@pytest.fixture(scope="module")
def package_tar(tmp_path_factory, iris_classifier, iris) -> bytes:
    package = tmp_path_factory.mktemp("pkg") / "iris"
    save_model(iris_classifier, package, input_example=iris[0].head(5))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(p for p in package.rglob("*") if p.is_file()):
            archive.add(path, arcname=path.relative_to(package).as_posix())
    return buffer.getvalue()


def experiment_names(http: httpx.Client) -> set[str]:
    return {e["name"] for e in http.get(f"{TRACKING}/experiments").json()["experiments"]}


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


# --- Host -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", f"{TRACKING}/experiments"),
        ("GET", "/"),
        ("GET", "/health"),
        ("GET", f"{MLFLOW}/experiments/search"),
    ],
)
def test_a_foreign_host_gets_400_invalid_host(http: httpx.Client, method: str, path: str):
    response = http.request(method, path, headers=EVIL)
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_host"
    assert "evil.example" in response.json()["error"]["message"]


def test_a_foreign_host_writes_nothing(http: httpx.Client, run_id: str):
    name = unique("rebound")
    assert http.post(f"{TRACKING}/experiments", json={"name": name}, headers=EVIL).status_code == 400
    assert http.post(f"{MLFLOW}/experiments/create", json={"name": name}, headers=EVIL).status_code == 400
    metric = {"run_id": run_id, "key": "rebound", "value": 1.0, "timestamp": 1, "step": 0}
    assert http.post(f"{MLFLOW}/runs/log-metric", json=metric, headers=EVIL).status_code == 400
    assert name not in experiment_names(http)
    assert "rebound" not in http.get(f"{TRACKING}/runs/{run_id}").json()["metrics"]


def test_the_loopback_names_are_answered_with_any_port(http: httpx.Client, server: Server):
    for host in ("localhost", f"localhost:{server.port}", f"127.0.0.1:{server.port}", "[::1]:1234"):
        assert http.get(f"{TRACKING}/experiments", headers={"Host": host}).status_code == 200, host


def test_allowed_hosts_adds_the_names_a_server_is_reached_under(tmp_path: Path):
    server = Server(
        tmp_path,
        f"sqlite:///{tmp_path / 'quayside.db'}",
        settings={"QUAYSIDE_ALLOWED_HOSTS": "tracking.example.com"},
    ).start()
    try:
        get = lambda host: httpx.get(f"{server.url}/health", headers={"Host": host}, timeout=30)  # noqa: E731
        assert get("tracking.example.com").status_code == 200
        assert get("tracking.example.com:443").status_code == 200
        assert get("localhost").status_code == 200
        assert get("evil.example").status_code == 400
    finally:
        server.stop()


# --- body types of state-changing requests ----------------------------------------------------


@pytest.mark.parametrize("headers", [PLAIN, FORM, {}], ids=["text-plain", "form", "no-content-type"])
def test_a_cross_site_post_creates_no_experiment(http: httpx.Client, headers: dict[str, str]):
    name = unique("csrf")
    body = f'{{"name": "{name}"}}'.encode()
    quayside = http.post(f"{TRACKING}/experiments", content=body, headers=headers)
    mlflow = http.post(f"{MLFLOW}/experiments/create", content=body, headers=headers)
    assert quayside.status_code == 415, quayside.text
    assert quayside.json()["error"]["code"] == "unsupported_media_type"
    assert "application/json" in quayside.json()["error"]["message"]
    assert mlflow.status_code == 415 and "application/json" in mlflow.json()["message"]
    assert name not in experiment_names(http)


def test_a_cross_site_post_logs_no_metric(http: httpx.Client, run_id: str):
    body = f'{{"run_id": "{run_id}", "key": "csrf", "value": 1.0, "timestamp": 1, "step": 0}}'.encode()
    response = http.post(f"{MLFLOW}/runs/log-metric", content=body, headers=PLAIN)
    assert response.status_code == 415
    batch = http.post(f"{TRACKING}/runs/{run_id}/batch", content=b'{"params": {"csrf": "1"}}', headers=PLAIN)
    assert batch.status_code == 415
    run = http.get(f"{TRACKING}/runs/{run_id}").json()
    assert "csrf" not in run["metrics"] and "csrf" not in run["params"]


def test_a_cross_site_post_registers_no_version(http: httpx.Client, package_tar: bytes):
    name = unique("csrf-model")
    for headers in (PLAIN, FORM, {}, {"content-type": "multipart/form-data; boundary=x"}):
        response = http.post(f"{REGISTRY}/models/{name}/versions", content=package_tar, headers=headers)
        assert response.status_code == 415, (headers, response.text)
        assert "application/x-tar" in response.json()["error"]["message"]
    assert http.get(f"{REGISTRY}/models/{name}").status_code == 404


def test_the_declared_types_still_work(http: httpx.Client, run_id: str, package_tar: bytes):
    name = unique("declared")
    created = http.post(f"{TRACKING}/experiments", json={"name": name})
    assert created.status_code == 201, created.text
    charset = {"content-type": "application/json; charset=utf-8"}
    renamed = http.patch(
        f"{TRACKING}/experiments/{created.json()['id']}",
        content=b'{"name": "x' + name.encode() + b'"}',
        headers=charset,
    )
    assert renamed.status_code == 200, renamed.text
    registered = http.post(
        f"{REGISTRY}/models/{name}/versions",
        content=package_tar,
        headers={"content-type": "application/x-tar"},
    )
    assert registered.status_code == 201, registered.text
    uploaded = http.put(
        f"{TRACKING}/runs/{run_id}/artifacts/file",
        params={"path": "declared.bin"},
        content=b"\x00\x01",
        headers={"content-type": "application/octet-stream"},
    )
    assert uploaded.status_code == 201, uploaded.text
    # A DELETE carries no body and needs no type (another site cannot send one without a preflight).
    assert http.delete(f"{TRACKING}/experiments/{created.json()['id']}").status_code == 200


def test_an_upload_of_another_type_than_its_route_declares_is_refused(http: httpx.Client, run_id: str):
    response = http.put(
        f"{TRACKING}/runs/{run_id}/artifacts/file", params={"path": "typed.txt"}, content=b"x", headers=PLAIN
    )
    assert response.status_code == 415
    assert "typed.txt" not in str(http.get(f"{TRACKING}/runs/{run_id}/artifacts").json())


# --- CORS ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", [f"{TRACKING}/experiments", f"{MLFLOW}/experiments/create", "/"])
def test_no_cors_a_preflight_from_another_origin_is_not_approved(http: httpx.Client, path: str):
    preflight = http.options(
        path,
        headers={
            "Origin": "http://evil.example",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "content-type",
        },
    )
    assert "access-control-allow-origin" not in preflight.headers
    assert "access-control-allow-methods" not in preflight.headers
    plain = http.get(f"{TRACKING}/experiments", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in plain.headers


# --- artifacts are downloads --------------------------------------------------------------------

HOSTILE_FILES = {
    "page.html": b"<html><script>alert(document.cookie)</script></html>",
    "image.svg": b'<svg xmlns="http://www.w3.org/2000/svg"><script>alert(1)</script></svg>',
    "notes.txt": b"plain text",
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
@pytest.mark.parametrize("route", ["quayside", "mlflow"])
def test_an_uploaded_artifact_is_served_as_a_download_never_inline(
    http: httpx.Client, run_id: str, name: str, route: str
):
    content = HOSTILE_FILES[name]
    if route == "quayside":
        url, params = f"{TRACKING}/runs/{run_id}/artifacts/file", {"path": f"{route}/{name}"}
        assert http.put(url, params=params, content=content).status_code == 201
        response = http.get(url, params=params)
    else:
        url, params = f"{MLFLOW_ARTIFACTS}/{run_id}/{route}/{name}", {}
        mime = {"html": "text/html", "svg": "image/svg+xml", "txt": "text/plain"}[name.rsplit(".", 1)[1]]
        assert http.put(url, content=content, headers={"content-type": mime}).status_code == 200
        response = http.get(url)
    assert response.status_code == 200, response.text
    assert response.content == content
    assert response.headers["content-disposition"] == f'attachment; filename="{name}"'
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["content-type"] == "application/octet-stream"
    assert response.headers["content-security-policy"] == "sandbox"


def test_the_ui_never_serves_an_svg_inline(http: httpx.Client, run_id: str):
    url = f"{TRACKING}/runs/{run_id}/artifacts/file"
    http.put(url, params={"path": "ui/image.svg"}, content=HOSTILE_FILES["image.svg"]).raise_for_status()
    response = http.get(f"/runs/{run_id}/artifacts/image", params={"path": "ui/image.svg"})
    assert response.status_code == 400
    assert "svg" not in response.headers.get("content-type", "")
