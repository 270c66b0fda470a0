"""Several models in one ``quayside serve``: each answers as its package does, over REST and gRPC.

Three ONNX models (a random forest and a logistic regression on iris, a ridge on diabetes)
in one server, the regression renamed with ``NAME=path``; ``/invocations`` needs ``?model=``;
the repository extension loads a fourth by path and unloads it again, over REST and gRPC.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from sklearn.datasets import load_diabetes, load_iris
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, Ridge
from tritonclient.utils import InferenceServerException

import quayside
from tests.serving.conftest import RunningServer, free_port, invocations_error, start_server, v2_error


@pytest.fixture(scope="module")
def iris_rows() -> np.ndarray:
    return load_iris(return_X_y=True)[0].astype(np.float32)


@pytest.fixture(scope="module")
def diabetes_rows() -> np.ndarray:
    return load_diabetes(return_X_y=True)[0]


@pytest.fixture(scope="module")
def packages(tmp_path_factory, iris_rows, diabetes_rows) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("multi")
    y_iris = load_iris(return_X_y=True)[1]
    y_diabetes = load_diabetes(return_X_y=True)[1]
    models = {
        "forest": (RandomForestClassifier(n_estimators=10, random_state=0).fit(iris_rows, y_iris), iris_rows),
        "ridge": (Ridge().fit(diabetes_rows, y_diabetes), diabetes_rows),
        "logistic": (LogisticRegression(max_iter=500).fit(iris_rows, y_iris), iris_rows),
        "fourth": (RandomForestClassifier(n_estimators=3, random_state=1).fit(iris_rows, y_iris), iris_rows),
    }
    paths = {}
    for name, (model, rows) in models.items():
        paths[name] = root / name
        quayside.save_model(model, paths[name], input_example=rows[:20], to_onnx=True, name=name)
    return paths


@pytest.fixture(scope="module")
def server(packages, tmp_path_factory) -> Iterator[RunningServer]:
    grpc_port = free_port()
    running = start_server(
        packages["forest"],
        str(packages["ridge"]),
        f"lr={packages['logistic']}",  # served as 'lr', not under the package's own name
        "--grpc-port",
        str(grpc_port),
        "--quiet",
        "--model-control",
        log_dir=tmp_path_factory.mktemp("log"),
    )
    running.grpc_address = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    yield running
    running.stop()


def v2_body(rows: np.ndarray, datatype: str) -> dict:
    return {
        "inputs": [
            {"name": "input", "datatype": datatype, "shape": list(rows.shape), "data": rows.ravel().tolist()}
        ]
    }


def expected(packages: dict[str, Path], name: str, rows: np.ndarray) -> dict[str, np.ndarray]:
    return quayside.load_model(packages[name]).predict(rows)


def outputs(response: httpx.Response) -> dict[str, list]:
    assert response.status_code == 200, response.text
    return {o["name"]: o["data"] for o in response.json()["outputs"]}


def test_each_model_answers_as_its_package_concurrently_over_rest(server, packages, iris_rows, diabetes_rows):
    cases = [
        ("forest", "forest", iris_rows[:7], "FP32", "label"),
        ("ridge", "ridge", diabetes_rows[:5], "FP64", "prediction"),
        ("lr", "logistic", iris_rows[40:60], "FP32", "label"),
    ]

    async def all_at_once() -> list[httpx.Response]:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
            calls = [
                client.post(f"/v2/models/{served}/infer", json=v2_body(rows, datatype))
                for served, _, rows, datatype, _ in cases
                for _ in range(10)
            ]
            return await asyncio.gather(*calls)

    responses = asyncio.run(all_at_once())
    for i, (served, package, rows, _, output) in enumerate(cases):
        want = np.ravel(expected(packages, package, rows)[output])
        for response in responses[i * 10 : (i + 1) * 10]:
            assert response.json()["model_name"] == served
            np.testing.assert_allclose(outputs(response)[output], want, rtol=1e-5)


def test_each_model_answers_over_grpc(server, packages, iris_rows, diabetes_rows):
    with triton.InferenceServerClient(server.grpc_address) as client:
        for served, package, rows, datatype, output in [
            ("forest", "forest", iris_rows[:4], "FP32", "label"),
            ("ridge", "ridge", diabetes_rows[:3], "FP64", "prediction"),
            ("lr", "logistic", iris_rows[100:104], "FP32", "label"),
        ]:
            tensor = triton.InferInput("input", list(rows.shape), datatype)
            tensor.set_data_from_numpy(rows)
            answer = client.infer(served, [tensor])
            want = np.ravel(expected(packages, package, rows)[output])
            np.testing.assert_allclose(np.ravel(answer.as_numpy(output)), want, rtol=1e-5)
            assert client.is_model_ready(served)
        with pytest.raises(InferenceServerException) as caught:
            client.infer("logistic", [tensor])  # renamed: the package's own name is not served
        assert caught.value.status() == "StatusCode.NOT_FOUND"
        assert "'forest', 'ridge', 'lr'" in caught.value.message()


def test_invocations_needs_the_model_named_when_several_are_served(server, packages, diabetes_rows):
    response = httpx.post(f"{server.url}/invocations", json={"inputs": diabetes_rows[:2].tolist()})
    assert response.status_code == 400, response.text
    _, code, message = invocations_error(response)
    assert code == "bad_request" and "?model=NAME" in message and "'forest', 'ridge', 'lr'" in message
    response = httpx.post(
        f"{server.url}/invocations?model=ridge", json={"inputs": diabetes_rows[:2].tolist()}
    )
    assert response.status_code == 200, response.text
    want = expected(packages, "ridge", diabetes_rows[:2])["prediction"]
    np.testing.assert_allclose(np.ravel(response.json()["predictions"]), np.ravel(want), rtol=1e-5)
    response = httpx.post(f"{server.url}/invocations?model=nope", json={"inputs": [[1.0]]})
    assert response.status_code == 404 and "no model named 'nope'" in invocations_error(response)[2]


def test_health_metadata_and_versioned_routes_per_model(server):
    assert httpx.get(f"{server.url}/v2/health/ready").json() == {"ready": True}
    assert httpx.get(f"{server.url}/v2/models/lr").json()["name"] == "lr"
    assert httpx.get(f"{server.url}/v2/models/ridge/ready").json() == {"ready": True}
    response = httpx.get(f"{server.url}/v2/models/ridge/versions/2")
    assert response.status_code == 404
    assert "no version '2' of model 'ridge'" in v2_error(response)[1]
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'quayside_model_load_seconds{model="lr",version=""}' in metrics
    assert 'quayside_requests_in_flight{model="ridge",version=""}' in metrics


def test_repository_index_load_and_unload_over_rest(server, packages, iris_rows):
    index = httpx.post(f"{server.url}/v2/repository/index").json()
    assert [(e["name"], e["state"]) for e in index] == [
        ("forest", "READY"),
        ("lr", "READY"),
        ("ridge", "READY"),
    ]
    load = httpx.post(
        f"{server.url}/v2/repository/models/extra/load",
        json={"parameters": {"uri": str(packages["fourth"])}},
        timeout=60,
    )
    assert load.status_code == 200, load.text
    rows = iris_rows[10:13]
    answer = httpx.post(f"{server.url}/v2/models/extra/infer", json=v2_body(rows, "FP32"))
    np.testing.assert_allclose(
        outputs(answer)["label"], np.ravel(expected(packages, "fourth", rows)["label"])
    )
    assert httpx.post(f"{server.url}/v2/repository/models/extra/unload").status_code == 200
    gone = httpx.post(f"{server.url}/v2/models/extra/infer", json=v2_body(rows, "FP32"))
    assert gone.status_code == 404
    code, message = v2_error(gone)
    assert code == "not_found" and "'extra' is unloaded" in message
    index = httpx.post(f"{server.url}/v2/repository/index").json()
    assert {"name": "extra", "version": "", "state": "UNAVAILABLE", "reason": "unloaded"} in index
    missing = httpx.post(
        f"{server.url}/v2/repository/models/other/load", json={"parameters": {"uri": "/no/such/package"}}
    )
    assert 400 <= missing.status_code < 500 and "/no/such/package" in v2_error(missing)[1]
    bad = httpx.post(f"{server.url}/v2/repository/models/other/load", json={"parameters": {"uri": 3}})
    assert bad.status_code == 400 and "parameters.uri" in v2_error(bad)[1]
    assert httpx.post(f"{server.url}/v2/repository/models/nope/unload").status_code == 404


def test_repository_load_and_unload_over_grpc(server, packages, iris_rows):
    from tritonclient.grpc import service_pb2

    # tritonclient's load_model sends no uri parameter: the request is built by hand
    request = service_pb2.RepositoryModelLoadRequest(model_name="grpc_extra")
    request.parameters["uri"].string_param = str(packages["fourth"])
    with triton.InferenceServerClient(server.grpc_address) as client:
        client._client_stub.RepositoryModelLoad(request, timeout=60)
        states = {m["name"]: m["state"] for m in client.get_model_repository_index(as_json=True)["models"]}
        assert states["grpc_extra"] == "READY"
        rows = iris_rows[:2]
        tensor = triton.InferInput("input", list(rows.shape), "FP32")
        tensor.set_data_from_numpy(rows)
        answer = client.infer("grpc_extra", [tensor])
        want = np.ravel(expected(packages, "fourth", rows)["label"])
        np.testing.assert_allclose(np.ravel(answer.as_numpy("label")), want)
        client.unload_model("grpc_extra")
        with pytest.raises(InferenceServerException) as caught:
            client.infer("grpc_extra", [tensor])
        assert caught.value.status() == "StatusCode.NOT_FOUND"
        assert "'grpc_extra' is unloaded" in caught.value.message()


def test_a_reloaded_lone_model_answers_invocations_from_its_new_package(packages, iris_rows, tmp_path):
    running = start_server(
        packages["forest"], "--grpc-port", "0", "--quiet", "--model-control", log_dir=tmp_path
    )
    try:
        reload = httpx.post(
            f"{running.url}/v2/repository/models/forest/load",
            json={"parameters": {"uri": str(packages["fourth"])}},
            timeout=60,
        )
        assert reload.status_code == 200, reload.text
        answer = httpx.post(
            f"{running.url}/invocations", json={"inputs": {"input": iris_rows.tolist()}}, timeout=30
        )
        assert answer.status_code == 200, answer.text
        labels = answer.json()["predictions"]["label"]
        np.testing.assert_array_equal(labels, np.ravel(expected(packages, "fourth", iris_rows)["label"]))
    finally:
        running.stop()
