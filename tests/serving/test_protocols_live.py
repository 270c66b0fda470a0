"""Each protocol and content type against a real server: answers equal ``load_model(...).predict``."""

from __future__ import annotations

import csv
import io
import time

import httpx
import numpy as np
import pytest

import quayside


@pytest.fixture(scope="module")
def diabetes_rows(diabetes) -> np.ndarray:
    X, _ = diabetes
    return X[100:105]


@pytest.fixture(scope="module")
def plan_rows(mixed_pipeline):
    _, X = mixed_pipeline
    return X.iloc[50:56]


def test_v2_infer_returns_the_packages_own_predictions(tensor_server, tensor_package, diabetes_rows):
    body = {
        "id": "req-1",
        "inputs": [
            {
                "name": "input",
                "datatype": "FP64",
                "shape": list(diabetes_rows.shape),
                "data": diabetes_rows.ravel().tolist(),
            }
        ],
    }
    response = httpx.post(f"{tensor_server.url}/v2/models/diabetes/infer", json=body)
    assert response.status_code == 200, response.text
    document = response.json()
    expected = quayside.load_model(tensor_package).predict(diabetes_rows)
    (output,) = document["outputs"]
    assert document["model_name"] == "diabetes" and document["id"] == "req-1"
    assert output["name"] == "prediction" and output["shape"] == [5]
    assert output["datatype"] == "FP64"
    np.testing.assert_allclose(output["data"], expected["prediction"].ravel())


def test_v2_accepts_nested_data_and_table_columns_as_separate_inputs(table_server, table_package, plan_rows):
    inputs = [
        {"name": "income", "datatype": "FP64", "shape": [6], "data": plan_rows["income"].tolist()},
        {
            "name": "age",
            "datatype": "INT64",
            "shape": [6, 1],
            "data": [[a] for a in plan_rows["age"].tolist()],
        },
        {"name": "plan", "datatype": "BYTES", "shape": [6], "data": plan_rows["plan"].tolist()},
    ]
    response = httpx.post(f"{table_server.url}/v2/models/plans/infer", json={"inputs": inputs})
    assert response.status_code == 200, response.text
    outputs = {o["name"]: o for o in response.json()["outputs"]}
    expected = quayside.load_model(table_package).predict(plan_rows)
    assert outputs["label"]["data"] == expected["label"].tolist()
    np.testing.assert_allclose(
        np.reshape(outputs["probabilities"]["data"], outputs["probabilities"]["shape"]),
        expected["probabilities"],
        rtol=1e-6,
    )


def test_v2_returns_only_the_outputs_asked_for(table_server, plan_rows):
    inputs = [
        {"name": "income", "datatype": "FP64", "shape": [1], "data": [51000.0]},
        {"name": "age", "datatype": "INT64", "shape": [1], "data": [40]},
        {"name": "plan", "datatype": "BYTES", "shape": [1], "data": ["pro"]},
    ]
    body = {"inputs": inputs, "outputs": [{"name": "probabilities"}]}
    response = httpx.post(f"{table_server.url}/v2/models/plans/infer", json=body)
    assert [o["name"] for o in response.json()["outputs"]] == ["probabilities"]


def _predictions(response: httpx.Response) -> dict:
    assert response.status_code == 200, response.text
    return response.json()["predictions"]


@pytest.mark.parametrize(
    "layout",
    ["dataframe_split", "dataframe_records", "instances_records", "instances_rows", "inputs_columns"],
)
def test_invocations_json_layouts_on_a_table_model(table_server, table_package, plan_rows, layout):
    records = plan_rows.to_dict(orient="records")
    rows = plan_rows.values.tolist()
    body = {
        "dataframe_split": {"dataframe_split": {"columns": list(plan_rows.columns), "data": rows}},
        "dataframe_records": {"dataframe_records": records},
        "instances_records": {"instances": records},
        "instances_rows": {"instances": rows},
        "inputs_columns": {"inputs": {c: plan_rows[c].tolist() for c in plan_rows.columns}},
    }[layout]
    predictions = _predictions(httpx.post(f"{table_server.url}/invocations", json=body))
    expected = quayside.load_model(table_package).predict(plan_rows)
    assert predictions["label"] == expected["label"].tolist()
    np.testing.assert_allclose(predictions["probabilities"], expected["probabilities"], rtol=1e-6)


def test_invocations_csv_on_a_table_model(table_server, table_package, plan_rows):
    text = io.StringIO()
    plan_rows.to_csv(text, index=False, quoting=csv.QUOTE_MINIMAL)
    response = httpx.post(
        f"{table_server.url}/invocations", content=text.getvalue(), headers={"content-type": "text/csv"}
    )
    expected = quayside.load_model(table_package).predict(plan_rows)
    assert _predictions(response)["label"] == expected["label"].tolist()


@pytest.mark.parametrize("layout", ["inputs", "instances", "dataframe_split", "csv"])
def test_invocations_on_a_tensor_model(tensor_server, tensor_package, diabetes_rows, layout):
    rows = diabetes_rows.tolist()
    url = f"{tensor_server.url}/invocations"
    if layout == "csv":
        lines = [",".join(f"x{i}" for i in range(10))] + [",".join(repr(v) for v in row) for row in rows]
        response = httpx.post(
            url, content="\n".join(lines), headers={"content-type": "text/csv; charset=utf-8"}
        )
    elif layout == "dataframe_split":
        response = httpx.post(
            url, json={"dataframe_split": {"columns": [f"x{i}" for i in range(10)], "data": rows}}
        )
    else:
        response = httpx.post(url, json={layout: rows})
    expected = quayside.load_model(tensor_package).predict(diabetes_rows)["prediction"]
    np.testing.assert_allclose(_predictions(response), expected)


def test_metadata_health_and_request_ids(tensor_server):
    metadata = httpx.get(f"{tensor_server.url}/v2/models/diabetes").json()
    assert metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP64", "shape": [-1, 10]}]
    assert httpx.get(f"{tensor_server.url}/v2/health/live").json() == {"live": True}
    assert httpx.get(f"{tensor_server.url}/v2/models/diabetes/ready").status_code == 200
    assert httpx.get(f"{tensor_server.url}/ping").status_code == 200
    echoed = httpx.get(f"{tensor_server.url}/v2/health/ready", headers={"x-request-id": "trace-42"})
    assert echoed.headers["x-request-id"] == "trace-42"
    first = httpx.get(f"{tensor_server.url}/v2").headers["x-request-id"]
    second = httpx.get(f"{tensor_server.url}/v2").headers["x-request-id"]
    assert first and second and first != second


def test_docs_show_the_models_real_inputs(table_server):
    spec = httpx.get(f"{table_server.url}/openapi.json").json()
    v2_body = spec["paths"]["/v2/models/{model_name}/infer"]["post"]["requestBody"]["content"][
        "application/json"
    ]
    tensors = v2_body["schema"]["properties"]["inputs"]["items"]["oneOf"]
    declared = {t["properties"]["name"]["enum"][0]: t["properties"]["datatype"]["enum"][0] for t in tensors}
    assert declared == {"income": "FP64", "age": "INT64", "plan": "BYTES"}
    assert [i["name"] for i in v2_body["schema"]["example"]["inputs"]] == ["income", "age", "plan"]
    invocations = spec["paths"]["/invocations"]["post"]["requestBody"]["content"]
    assert set(invocations) == {"application/json", "text/csv"}
    assert invocations["application/json"]["schema"]["example"]["dataframe_split"]["columns"] == [
        "income",
        "age",
        "plan",
    ]
    assert httpx.get(f"{table_server.url}/docs").status_code == 200


def test_metrics_count_requests_by_route_and_status(tensor_server):
    httpx.post(f"{tensor_server.url}/invocations", json={"inputs": [[0.0] * 10]})
    httpx.post(f"{tensor_server.url}/invocations", json={"inputs": [[0.0] * 9]})
    text = httpx.get(f"{tensor_server.url}/metrics").text
    # prometheus_client writes the labels sorted by name
    assert 'quayside_requests_total{model="diabetes",route="/invocations",status="200",version=""}' in text
    assert 'quayside_requests_total{model="diabetes",route="/invocations",status="422",version=""}' in text
    assert 'quayside_model_load_seconds{model="diabetes",version=""}' in text
    assert "quayside_request_duration_seconds_bucket" in text
    assert "quayside_model_load_seconds" in text
    assert "quayside_batch_rows_count" in text


def test_each_access_log_line_is_json_with_the_request_id(tensor_server):
    import json

    response = httpx.get(f"{tensor_server.url}/v2/health/live", headers={"x-request-id": "log-me-7"})
    assert response.status_code == 200
    mine = []
    for _ in range(100):  # the line is written just after the response is sent
        lines = [json.loads(line) for line in tensor_server.log().splitlines() if line.startswith("{")]
        mine = [line for line in lines if line["request_id"] == "log-me-7"]
        if mine:
            break
        time.sleep(0.02)
    assert mine and mine[0]["path"] == "/v2/health/live" and mine[0]["status"] == 200


def test_a_native_model_is_served_by_its_flavor_when_trusted(slow_package, tmp_path):
    from tests.serving.conftest import start_server

    server = start_server(slow_package, "--trust", "--quiet", log_dir=tmp_path)
    try:
        metadata = httpx.get(f"{server.url}/v2/models/slow").json()
        assert metadata["platform"] == "quayside_python"
        response = httpx.post(
            f"{server.url}/invocations", json={"inputs": [[1, 2, 3], [4, 5, 6]]}, timeout=10
        )
        assert response.json() == {"predictions": [6.0, 15.0]}
    finally:
        assert server.stop() == 0


def test_a_registered_model_is_served_under_its_registered_name_and_version(
    tensor_package, tmp_path, diabetes
):
    from quayside.compose.clients import register_model
    from quayside.config import Settings
    from tests.serving.conftest import start_server

    home = tmp_path / "home"
    settings = Settings(home=home)
    register_model(tensor_package, "regressor", settings=settings)
    second = register_model(tensor_package, "regressor", settings=settings)
    quayside.RegistryClient(settings=settings).set_alias("regressor", "champion", second.version)
    server = start_server(
        "models:/regressor@champion", "--quiet", log_dir=tmp_path, env={"QUAYSIDE_HOME": str(home)}
    )
    try:
        metadata = httpx.get(f"{server.url}/v2/models/regressor").json()
        assert metadata["name"] == "regressor" and metadata["versions"] == ["2"]
        X, _ = diabetes
        body = {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 10], "data": X[0].tolist()}]}
        response = httpx.post(f"{server.url}/v2/models/regressor/infer", json=body).json()
        assert response["model_name"] == "regressor" and response["model_version"] == "2"
        expected = quayside.load_model(tensor_package).predict(X[:1])["prediction"]
        np.testing.assert_allclose(response["outputs"][0]["data"], expected)
    finally:
        assert server.stop() == 0
