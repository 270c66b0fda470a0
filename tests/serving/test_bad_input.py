"""Every class of bad input gets its documented 4xx with a message naming the problem, never a 500."""

from __future__ import annotations

import httpx
import numpy as np
import pytest

import quayside
from tests.serving.conftest import error_of, invocations_error, v2_error

ROW = [0.01] * 10


def v2(data, *, name="input", datatype="FP64", shape=None) -> dict:
    shape = shape if shape is not None else [len(data) // 10 if len(data) >= 10 else 1, 10]
    return {"inputs": [{"name": name, "datatype": datatype, "shape": shape, "data": data}]}


V2_CASES = [
    # (case id, body bytes or JSON, expected status, expected code, words the message must hold)
    ("malformed JSON", b'{"inputs": [', 400, "malformed_input", "not valid JSON"),
    ("empty body", b"", 400, "malformed_input", "empty"),
    ("not a V2 request", {"instances": [ROW]}, 400, "bad_request", "not a V2 inference request"),
    (
        "tensor without data",
        {"inputs": [{"name": "input", "datatype": "FP64", "shape": [1, 10]}]},
        400,
        "bad_request",
        "'data'",
    ),
    ("unknown datatype", v2(ROW, datatype="FP99"), 400, "bad_request", "unknown datatype 'FP99'"),
    ("shape and data disagree", v2(ROW[:9], shape=[1, 10]), 400, "bad_request", "needs 10 values, got 9"),
    ("missing input", {"inputs": []}, 422, "signature_mismatch", "missing input 'input'"),
    (
        "extra input",
        {"inputs": [*v2(ROW)["inputs"], {"name": "x", "datatype": "FP64", "shape": [1], "data": [1.0]}]},
        422,
        "signature_mismatch",
        "unexpected input 'x'",
    ),
    ("wrong name", v2(ROW, name="features"), 422, "signature_mismatch", "missing input 'input'"),
    (
        "strings for floats",
        v2(["a"] * 10, datatype="BYTES"),
        422,
        "signature_mismatch",
        "expected float64, got str",
    ),
    (
        "floats declared INT64",
        v2([1.5] * 10, datatype="INT64"),
        422,
        "signature_mismatch",
        "floats are not cast to integers",
    ),
    ("wrong shape", v2(ROW[:9], shape=[1, 9]), 422, "signature_mismatch", "shape (1, 9)"),
    ("null where NaN is not allowed", v2([None, *ROW[1:]]), 422, "signature_mismatch", "NaN or infinity"),
    ("body over the limit", v2(ROW * 1500, shape=[1500, 10]), 413, "payload_too_large", "limit"),
]


@pytest.mark.parametrize(
    ("body", "status", "code", "words"), [c[1:] for c in V2_CASES], ids=[c[0] for c in V2_CASES]
)
def test_v2_bad_input(tensor_server, body, status, code, words):
    url = f"{tensor_server.url}/v2/models/diabetes/infer"
    response = httpx.post(url, content=body) if isinstance(body, bytes) else httpx.post(url, json=body)
    assert response.status_code == status, response.text
    error_code, message = v2_error(response)
    assert error_code == code
    assert words in message


INVOCATION_CASES = [
    ("malformed JSON", b"{inputs", "application/json", 400, "malformed_input", "not valid JSON"),
    (
        "two layouts",
        b'{"inputs": [[1]], "instances": [[1]]}',
        "application/json",
        400,
        "bad_request",
        "exactly one of",
    ),
    ("no layout", b'{"rows": [[1]]}', "application/json", 400, "bad_request", "exactly one of"),
    ("JSON that is not an object", b"[1, 2]", "application/json", 400, "bad_request", "JSON object"),
    ("ragged rows", b'{"inputs": [[1, 2], [3]]}', "application/json", 422, "signature_mismatch", "ragged"),
    (
        "unsupported content type",
        b"x=1",
        "application/x-www-form-urlencoded",
        415,
        "unsupported_media_type",
        "text/csv",
    ),
    ("CSV row longer than header", b"a,b\n1,2,3\n", "text/csv", 400, "malformed_input", "row 1 has 3 fields"),
    (
        "CSV with a word for a number",
        b"a,b,c,d,e,f,g,h,i,j\n1,2,3,4,5,6,7,8,9,ten\n",
        "text/csv",
        422,
        "signature_mismatch",
        "'ten'",
    ),
    ("CSV that is not UTF-8", b"a\n\xff\xfe\n", "text/csv", 400, "malformed_input", "UTF-8"),
    ("empty CSV", b"", "text/csv", 400, "malformed_input", "empty"),
    ("CSV with a header and no rows", b"m", "text/csv", 400, "malformed_input", "no data rows"),
]


def test_a_request_over_the_max_batch_size_is_served_on_its_own(tensor_server, tensor_package):
    """--max-batch-size 32 caps what the batcher merges; a 33-row request is answered, not refused."""
    rows = np.random.default_rng(5).normal(0, 0.05, size=(33, 10))
    url = f"{tensor_server.url}/v2/models/diabetes/infer"
    response = httpx.post(url, json=v2(rows.ravel().tolist(), shape=[33, 10]))
    assert response.status_code == 200, response.text
    (output,) = response.json()["outputs"]
    expected = quayside.load_model(tensor_package).predict(rows)["prediction"]
    np.testing.assert_allclose(output["data"], expected.ravel(), rtol=1e-6)


@pytest.mark.parametrize(
    ("body", "content_type", "status", "code", "words"),
    [c[1:] for c in INVOCATION_CASES],
    ids=[c[0] for c in INVOCATION_CASES],
)
def test_invocations_bad_input(tensor_server, body, content_type, status, code, words):
    response = httpx.post(
        f"{tensor_server.url}/invocations", content=body, headers={"content-type": content_type}
    )
    assert response.status_code == status, response.text
    mlflow_code, error_code, message = invocations_error(response)
    assert mlflow_code == "BAD_REQUEST"  # what MLflow's scoring server answers a body it refuses
    assert error_code == code
    assert words in message


TABLE_CASES = [
    ("missing column", {"dataframe_records": [{"income": 1.0, "age": 30}]}, "missing column 'plan'"),
    (
        "extra column",
        {"dataframe_records": [{"income": 1.0, "age": 30, "plan": "pro", "zip": "x"}]},
        "unexpected column 'zip'",
    ),
    (
        "text in a number column",
        {"dataframe_records": [{"income": "lots", "age": 30, "plan": "pro"}]},
        "'income'",
    ),
    (
        "number in a text column",
        {"dataframe_records": [{"income": 1.0, "age": 30, "plan": 7}]},
        "'plan': expected strings",
    ),
    (
        "float in an int column",
        {"dataframe_split": {"columns": ["income", "age", "plan"], "data": [[1.0, 30.5, "pro"]]}},
        "'age'",
    ),
    ("int out of range", {"dataframe_records": [{"income": 1.0, "age": 2**70, "plan": "pro"}]}, "'age'"),
    ("null in a column", {"dataframe_records": [{"income": None, "age": 30, "plan": "pro"}]}, "NaN"),
]


@pytest.mark.parametrize(("body", "words"), [c[1:] for c in TABLE_CASES], ids=[c[0] for c in TABLE_CASES])
def test_table_bad_input_names_the_column(table_server, body, words):
    response = httpx.post(f"{table_server.url}/invocations", json=body)
    assert response.status_code == 422, response.text
    _, code, message = invocations_error(response)
    assert code == "signature_mismatch"
    assert words in message


@pytest.mark.parametrize(
    ("method", "path", "status", "code"),
    [
        ("POST", "/v2/models/other/infer", 404, "not_found"),
        ("GET", "/v2/models/other", 404, "not_found"),
        ("GET", "/v2/models/diabetes/infer", 405, "method_not_allowed"),
        ("GET", "/nowhere", 404, "not_found"),
    ],
)
def test_unknown_models_and_routes(tensor_server, method, path, status, code):
    response = httpx.request(method, f"{tensor_server.url}{path}", json=v2(ROW) if method == "POST" else None)
    assert response.status_code == status
    error_code, _ = error_of(path, response)
    assert error_code == code


def test_no_bad_input_reached_a_500(tensor_server, table_server):
    for server in (tensor_server, table_server):
        metrics = httpx.get(f"{server.url}/metrics").text
        assert 'status="500"' not in metrics
