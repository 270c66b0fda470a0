"""``/v2/models/{name}/versions/{version}/...``: metadata, readiness and inference for one version.

The version is checked as gRPC checks it (``ModelServer.check_model``): the served one answers,
any other is a 404 naming what is served, on the fast path and through the framework alike.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import numpy as np
import pytest
from starlette.testclient import TestClient

import quayside
from quayside.serving.app import create_app
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime
from tests.serving.conftest import RunningServer, v2_error

ROWS = np.random.default_rng(3).normal(0, 0.05, size=(3, 10))
BODY = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [3, 10], "data": ROWS.ravel().tolist()}]}


@pytest.fixture(scope="module")
def versioned(tensor_package) -> Iterator[tuple[TestClient, object]]:
    """The diabetes model served as version 3 (as ``quayside serve models:/diabetes/3`` serves it)."""
    runtime = load_runtime(tensor_package, version="3")
    app = create_app(runtime, ServeOptions(quiet=True, allowed_hosts=("testserver",)))
    with TestClient(app) as http:
        yield http, app


@pytest.fixture(scope="module")
def expected(tensor_package) -> np.ndarray:
    return quayside.load_model(tensor_package).predict(ROWS)["prediction"].ravel()


def test_the_served_version_answers_metadata_and_readiness(versioned):
    http, _ = versioned
    metadata = http.get("/v2/models/diabetes/versions/3")
    assert metadata.status_code == 200, metadata.text
    assert metadata.json()["name"] == "diabetes" and metadata.json()["versions"] == ["3"]
    assert metadata.json() == http.get("/v2/models/diabetes").json()
    ready = http.get("/v2/models/diabetes/versions/3/ready")
    assert ready.status_code == 200 and ready.json() == {"ready": True}


@pytest.mark.parametrize("fast_path", [True, False], ids=["fast path", "framework"])
def test_the_served_version_infers_on_both_ways(versioned, expected, fast_path):
    http, app = versioned
    saved = app.app.infer_paths  # RequestContext -> FastPath
    if not fast_path:
        app.app.infer_paths = {}  # the fast path lets it by: FastAPI answers
    try:
        response = http.post("/v2/models/diabetes/versions/3/infer", json=BODY)
    finally:
        app.app.infer_paths = saved
    assert response.status_code == 200, response.text
    document = response.json()
    assert document["model_name"] == "diabetes" and document["model_version"] == "3"
    np.testing.assert_allclose(document["outputs"][0]["data"], expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/v2/models/diabetes/versions/4"),
        ("GET", "/v2/models/diabetes/versions/4/ready"),
        ("POST", "/v2/models/diabetes/versions/4/infer"),
    ],
)
def test_another_version_is_a_404_naming_the_served_one(versioned, method, path):
    http, _ = versioned
    response = http.request(method, path, json=BODY if method == "POST" else None)
    assert response.status_code == 404, response.text
    code, message = v2_error(response)
    assert code == "not_found"
    assert "no version '4' of model 'diabetes'" in message and "version 3" in message


def test_another_model_is_a_404_on_a_versioned_route(versioned):
    http, _ = versioned
    response = http.post("/v2/models/other/versions/3/infer", json=BODY)
    assert response.status_code == 404
    code, message = v2_error(response)
    assert code == "not_found" and "no model named 'other'" in message


def test_the_versioned_routes_are_documented(versioned):
    http, _ = versioned
    paths = http.get("/openapi.json").json()["paths"]
    infer = paths["/v2/models/{model_name}/versions/{model_version}/infer"]["post"]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert "get" in paths["/v2/models/{model_name}/versions/{model_version}"]
    assert "get" in paths["/v2/models/{model_name}/versions/{model_version}/ready"]


def test_a_server_without_a_version_answers_a_versioned_route_with_a_404(tensor_server: RunningServer):
    response = httpx.post(f"{tensor_server.url}/v2/models/diabetes/versions/1/infer", json=BODY)
    assert response.status_code == 404, response.text
    code, message = v2_error(response)
    assert code == "not_found" and "without a version" in message
    metrics = httpx.get(f"{tensor_server.url}/metrics").text
    assert 'route="/v2/models/{model_name}/versions/{model_version}/infer",status="404"' in metrics
