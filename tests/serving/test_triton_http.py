"""NVIDIA's ``tritonclient.http`` against a real ``quayside serve``, used as its users call it.

The client sends inputs with Triton's binary tensor data extension unless told
otherwise, and asks for every output in binary when it names none. Answers must
equal ``quayside.load_model(path).predict(...)`` whichever way the tensors travel;
a body whose framing does not add up is a 400 naming the problem.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import orjson
import pandas as pd
import pytest
import tritonclient.http as triton
from sklearn.datasets import load_iris
from sklearn.ensemble import RandomForestClassifier
from starlette.testclient import TestClient
from tritonclient.utils import InferenceServerException

import quayside
from quayside.serving.app import create_app
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime
from tests.serving.conftest import RunningServer, start_server, v2_error

HEADER = "Inference-Header-Content-Length"


@pytest.fixture(scope="module")
def iris_rows() -> np.ndarray:
    X, _ = load_iris(return_X_y=True)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def iris_package(tmp_path_factory, iris_rows) -> Path:
    """A random forest on iris (one FP32 input of shape (-1, 4); label and probabilities), as ONNX."""
    _, y = load_iris(return_X_y=True)
    forest = RandomForestClassifier(n_estimators=10, random_state=0).fit(iris_rows, y)
    path = tmp_path_factory.mktemp("triton") / "iris"
    quayside.save_model(forest, path, input_example=iris_rows[:20], to_onnx=True, name="iris")
    return path


@pytest.fixture(scope="module")
def iris_server(iris_package, tmp_path_factory) -> Iterator[RunningServer]:
    # 0.01 MiB: room for the tests' requests, and a limit a framed body can pass.
    server = start_server(
        iris_package, "--quiet", "--max-body-mb", "0.01", log_dir=tmp_path_factory.mktemp("log")
    )
    yield server
    server.stop()


def _client(server: RunningServer) -> triton.InferenceServerClient:
    return triton.InferenceServerClient(server.url.removeprefix("http://"))


@pytest.fixture(scope="module")
def iris_client(iris_server) -> Iterator[triton.InferenceServerClient]:
    client = _client(iris_server)
    yield client
    client.close()


@pytest.fixture(scope="module")
def plans_client(table_server) -> Iterator[triton.InferenceServerClient]:
    client = _client(table_server)
    yield client
    client.close()


@pytest.fixture(scope="module")
def plan_rows(mixed_pipeline):
    _, X = mixed_pipeline
    return X.iloc[40:47]


def _iris_input(rows: np.ndarray, *, binary_data: bool = True, name: str = "input") -> triton.InferInput:
    tensor = triton.InferInput(name, list(rows.shape), "FP32")
    tensor.set_data_from_numpy(rows, binary_data=binary_data)
    return tensor


def _plan_inputs(rows, *, binary: tuple[bool, bool, bool] = (True, True, True)) -> list[triton.InferInput]:
    columns = [
        ("income", "FP64", rows["income"].to_numpy()),
        ("age", "INT64", rows["age"].to_numpy().astype(np.int64)),
        ("plan", "BYTES", rows["plan"].to_numpy().astype(object)),
    ]
    inputs = []
    for (name, datatype, values), binary_data in zip(columns, binary, strict=True):
        tensor = triton.InferInput(name, list(values.shape), datatype)
        tensor.set_data_from_numpy(values, binary_data=binary_data)
        inputs.append(tensor)
    return inputs


def _assert_iris_answer(result: triton.InferResult, expected: dict[str, np.ndarray]) -> None:
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6)


def _sent_in_binary(result: triton.InferResult, name: str) -> bool:
    output = result.get_output(name)
    assert output is not None, name
    return "binary_data_size" in output.get("parameters", {}) and "data" not in output


# --- the client's own calls -------------------------------------------------------------


def test_health_and_metadata_through_the_client(iris_client):
    assert iris_client.is_server_live()
    assert iris_client.is_server_ready()
    assert iris_client.is_model_ready("iris")
    assert "binary_tensor_data" in iris_client.get_server_metadata()["extensions"]
    metadata = iris_client.get_model_metadata("iris")
    assert metadata["name"] == "iris" and metadata["platform"] == "onnxruntime_onnx"
    assert metadata["inputs"] == [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}]
    assert [o["name"] for o in metadata["outputs"]] == ["label", "probabilities"]


def test_infer_with_the_clients_defaults_sends_and_receives_binary(iris_client, iris_package, iris_rows):
    rows = iris_rows[45:55]
    result = iris_client.infer("iris", [_iris_input(rows)], request_id="tc-1")
    _assert_iris_answer(result, quayside.load_model(iris_package).predict(rows))
    assert result.get_response()["id"] == "tc-1"
    assert _sent_in_binary(result, "label") and _sent_in_binary(result, "probabilities")


def test_infer_with_json_inputs_and_json_outputs(iris_client, iris_package, iris_rows):
    rows = iris_rows[95:105]
    outputs = [triton.InferRequestedOutput(n, binary_data=False) for n in ("probabilities", "label")]
    result = iris_client.infer("iris", [_iris_input(rows, binary_data=False)], outputs=outputs)
    _assert_iris_answer(result, quayside.load_model(iris_package).predict(rows))
    assert [o["name"] for o in result.get_response()["outputs"]] == ["probabilities", "label"]
    assert not _sent_in_binary(result, "label") and not _sent_in_binary(result, "probabilities")


def test_json_inputs_with_the_default_outputs_get_binary_outputs(iris_client, iris_package, iris_rows):
    rows = iris_rows[:3]
    result = iris_client.infer("iris", [_iris_input(rows, binary_data=False)])
    _assert_iris_answer(result, quayside.load_model(iris_package).predict(rows))
    assert _sent_in_binary(result, "probabilities")


def test_binary_inputs_with_one_output_in_binary_and_one_in_json(iris_client, iris_package, iris_rows):
    rows = iris_rows[120:150]
    outputs = [
        triton.InferRequestedOutput("label", binary_data=False),
        triton.InferRequestedOutput("probabilities", binary_data=True),
    ]
    result = iris_client.infer("iris", [_iris_input(rows)], outputs=outputs)
    _assert_iris_answer(result, quayside.load_model(iris_package).predict(rows))
    assert not _sent_in_binary(result, "label") and _sent_in_binary(result, "probabilities")


def test_only_the_output_asked_for_comes_back(iris_client, iris_rows):
    outputs = [triton.InferRequestedOutput("label")]
    result = iris_client.infer("iris", [_iris_input(iris_rows[:2])], outputs=outputs)
    assert [o["name"] for o in result.get_response()["outputs"]] == ["label"]
    assert result.as_numpy("probabilities") is None


@pytest.mark.parametrize(
    "binary",
    [(True, True, True), (False, False, False), (True, False, True)],
    ids=["all binary", "all JSON", "mixed"],
)
def test_a_table_model_with_a_bytes_input(plans_client, table_package, plan_rows, binary):
    result = plans_client.infer("plans", _plan_inputs(plan_rows, binary=binary))
    expected = quayside.load_model(table_package).predict(plan_rows)
    np.testing.assert_array_equal(result.as_numpy("label"), expected["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected["probabilities"], rtol=1e-6)


def test_a_wrong_input_name_raises_the_servers_message(iris_client, iris_rows):
    with pytest.raises(InferenceServerException) as raised:
        iris_client.infer("iris", [_iris_input(iris_rows[:2], name="features")])
    assert raised.value.status() == "422"
    assert "missing input 'input'" in raised.value.message()
    assert "missing input 'input'" in str(raised.value)  # a dict here made str() raise TypeError


def test_a_wrong_shape_raises_the_servers_message(iris_client, iris_rows):
    with pytest.raises(InferenceServerException) as raised:
        iris_client.infer("iris", [_iris_input(np.ascontiguousarray(iris_rows[:2, :3]))])
    assert raised.value.status() == "422"
    assert "got shape (2, 3)" in raised.value.message()
    assert "got shape (2, 3)" in str(raised.value)


# --- the framing, byte by byte ------------------------------------------------------------


def _framed(header: dict, *chunks: bytes) -> tuple[bytes, str]:
    """A body framed by the extension, and its Inference-Header-Content-Length."""
    document = orjson.dumps(header)
    return b"".join((document, *chunks)), str(len(document))


def _one_input(parameters: dict, **fields) -> dict:
    tensor = {"name": "input", "datatype": "FP32", "shape": [2, 4], "parameters": parameters, **fields}
    return {"inputs": [tensor]}


ROWS = np.arange(8, dtype="<f4").reshape(2, 4)
RAW = ROWS.tobytes()


def test_a_hand_framed_request_gets_a_framed_answer(iris_server, iris_package):
    body, length = _framed(
        {
            "inputs": [
                {"name": "input", "datatype": "FP32", "shape": [2, 4], "parameters": {"binary_data_size": 32}}
            ],
            "outputs": [{"name": "probabilities", "parameters": {"binary_data": True}}, {"name": "label"}],
        },
        RAW,
    )
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body, headers={HEADER: length})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/octet-stream"
    answered = int(response.headers[HEADER])
    document = orjson.loads(response.content[:answered])
    probabilities, label = document["outputs"]
    expected = quayside.load_model(iris_package).predict(ROWS)
    assert label["data"] == expected["label"].tolist()
    assert probabilities["parameters"] == {"binary_data_size": 2 * 3 * 8} and "data" not in probabilities
    values = np.frombuffer(response.content[answered:], dtype="<f8").reshape(probabilities["shape"])
    np.testing.assert_allclose(values, expected["probabilities"], rtol=1e-6)


def test_a_plain_json_request_gets_a_plain_json_answer(iris_server):
    body = {"inputs": [{"name": "input", "datatype": "FP32", "shape": [2, 4], "data": ROWS.ravel().tolist()}]}
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"
    assert HEADER.lower() not in response.headers
    assert [o["name"] for o in response.json()["outputs"]] == ["label", "probabilities"]


def _size(n) -> dict:
    return {"binary_data_size": n}


WELL_FRAMED = _framed(_one_input(_size(32)), RAW)[0]

MALFORMED = [
    # (case id, body, its Inference-Header-Content-Length, words the message must hold)
    ("header length past the body", WELL_FRAMED, "9999", "the whole body is only"),
    ("negative header length", WELL_FRAMED, "-5", "non-negative integer"),
    ("header length not an integer", WELL_FRAMED, "12.5", "non-negative integer"),
    ("header length zero", WELL_FRAMED, "0", "is 0"),
    (
        "header cut short",
        WELL_FRAMED,
        "20",
        "inference header (the first 20 bytes",
    ),
    ("size not the shape's", *_framed(_one_input(_size(28)), RAW[:28]), "takes 32 (8 values of 4 bytes)"),
    ("bytes missing", *_framed(_one_input(_size(32)), RAW[:20]), "only 20 bytes of binary data are left"),
    ("bytes left over", *_framed(_one_input(_size(32)), RAW, b"\0" * 4), "4 bytes of binary data"),
    (
        "negative size",
        *_framed(_one_input(_size(-32)), RAW),
        "binary_data_size must be a non-negative integer",
    ),
    (
        "size not an integer",
        *_framed(_one_input(_size("32")), RAW),
        "binary_data_size must be a non-negative",
    ),
    ("size a boolean", *_framed(_one_input(_size(True)), RAW), "binary_data_size must be a non-negative"),
    ("data and size", *_framed(_one_input(_size(32), data=ROWS.ravel().tolist()), RAW), "both 'data' and"),
    ("unknown datatype", *_framed(_one_input(_size(32), datatype="FP99"), RAW), "unknown datatype 'FP99'"),
    ("parameters not an object", *_framed(_one_input([32]), RAW), "'parameters' must be an object"),
    (
        "binary_data_output not a boolean",
        *_framed({**_one_input(_size(32)), "parameters": {"binary_data_output": "yes"}}, RAW),
        "'binary_data_output' must be true or false",
    ),
    (
        "classification asked for",
        *_framed(
            {**_one_input(_size(32)), "outputs": [{"name": "label", "parameters": {"classification": 2}}]},
            RAW,
        ),
        "classification extension",
    ),
]


@pytest.mark.parametrize(
    ("body", "header", "words"),
    [c[1:] for c in MALFORMED],
    ids=[c[0] for c in MALFORMED],
)
def test_a_malformed_binary_body_is_a_400_naming_the_problem(iris_server, body, header, words):
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body, headers={HEADER: header})
    assert response.status_code == 400, response.text
    _, message = v2_error(response)
    assert words in message


def test_binary_data_size_without_the_header_is_a_400(iris_server):
    body = orjson.dumps(_one_input(_size(32)))
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body + RAW)
    assert response.status_code == 400
    assert "not valid JSON" in v2_error(response)[1]
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body)
    assert response.status_code == 400
    assert "no Inference-Header-Content-Length header" in v2_error(response)[1]


def _plan_body(plan: bytes, shape: tuple[int, ...] = (2,)) -> tuple[bytes, str]:
    inputs = [
        {"name": "income", "datatype": "FP64", "shape": [2], "data": [1.0, 2.0]},
        {"name": "age", "datatype": "INT64", "shape": [2], "data": [30, 40]},
        {
            "name": "plan",
            "datatype": "BYTES",
            "shape": list(shape),
            "parameters": _size(len(plan)),
        },
    ]
    return _framed({"inputs": inputs}, plan)


def _element(text: bytes) -> bytes:
    return struct.pack("<I", len(text)) + text


@pytest.mark.parametrize(
    ("plan", "words"),
    [
        (_element(b"pro"), "too few for the 2 BYTES elements"),
        (_element(b"pro") + struct.pack("<I", 50) + b"basic", "ends inside element 1 of the 2"),
        (_element(b"pro") + _element(b"basic") + b"x", "end after 16"),
        (_element(b"pro") + _element(b"\xff\xfe"), "BYTES element 1 is not UTF-8"),
    ],
    ids=["an element missing", "a length past the end", "bytes after the elements", "not UTF-8"],
)
def test_malformed_bytes_data_is_a_400_naming_the_problem(table_server, plan, words):
    body, length = _plan_body(plan)
    response = httpx.post(f"{table_server.url}/v2/models/plans/infer", content=body, headers={HEADER: length})
    assert response.status_code == 400, response.text
    assert words in v2_error(response)[1]


def test_a_shape_claiming_more_than_the_body_holds_is_a_400_not_an_allocation(iris_server, table_server):
    body, length = _framed(_one_input(_size(32), shape=[10**15, 4]), RAW)
    response = httpx.post(f"{iris_server.url}/v2/models/iris/infer", content=body, headers={HEADER: length})
    assert response.status_code == 400
    assert "takes 16000000000000000" in v2_error(response)[1]
    body, length = _plan_body(_element(b"pro") + _element(b"basic"), shape=(10**15, 2))
    response = httpx.post(f"{table_server.url}/v2/models/plans/infer", content=body, headers={HEADER: length})
    assert response.status_code == 400
    assert "too few for the 2000000000000000 BYTES elements" in v2_error(response)[1]


def test_hand_framed_bytes_data_is_answered(table_server, table_package):
    body, length = _plan_body(_element(b"pro") + _element(b"basic"))
    response = httpx.post(f"{table_server.url}/v2/models/plans/infer", content=body, headers={HEADER: length})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/json"  # no output asked for in binary
    rows = pd.DataFrame({"income": [1.0, 2.0], "age": [30, 40], "plan": ["pro", "basic"]})
    expected = quayside.load_model(table_package).predict(rows)
    label = next(o for o in response.json()["outputs"] if o["name"] == "label")
    assert label["data"] == expected["label"].tolist()


def test_the_body_limit_applies_to_the_whole_framed_body(iris_server, iris_rows):
    rows = np.tile(iris_rows, (5, 1))  # 750 rows: 12 000 bytes of binary data, over 0.01 MiB
    body, json_size = triton.InferenceServerClient.generate_request_body([_iris_input(rows)])
    response = httpx.post(
        f"{iris_server.url}/v2/models/iris/infer", content=body, headers={HEADER: str(json_size)}
    )
    assert response.status_code == 413
    assert "limit" in v2_error(response)[1]


def test_the_framework_route_answers_the_same_framed_bytes(iris_package, iris_rows):
    """The route documented in /docs (FastAPI, behind the fast path) speaks the extension too."""
    app = create_app(load_runtime(iris_package), ServeOptions(quiet=True, allowed_hosts=("testserver",)))
    body, json_size = triton.InferenceServerClient.generate_request_body([_iris_input(iris_rows[:4])])
    answers = []
    with TestClient(app) as http:
        answers.append(http.post("/v2/models/iris/infer", content=body, headers={HEADER: str(json_size)}))
        app.app.infer_paths = {}  # RequestContext -> FastPath: the fast path now lets it by
        answers.append(http.post("/v2/models/iris/infer", content=body, headers={HEADER: str(json_size)}))
    for response in answers:
        assert response.status_code == 200, response.text
        assert response.headers["content-type"] == "application/octet-stream"
    assert answers[0].content == answers[1].content
    assert answers[0].headers[HEADER] == answers[1].headers[HEADER]
    result = triton.InferenceServerClient.parse_response_body(
        answers[1].content, header_length=int(answers[1].headers[HEADER])
    )
    expected = quayside.load_model(iris_package).predict(iris_rows[:4])
    _assert_iris_answer(result, expected)


def test_the_docs_describe_the_extension(iris_server):
    spec = httpx.get(f"{iris_server.url}/openapi.json").json()
    infer = spec["paths"]["/v2/models/{model_name}/infer"]["post"]
    assert "binary tensor data extension" in infer["description"]
    assert HEADER in [p["name"] for p in infer["parameters"]]
    assert set(infer["requestBody"]["content"]) == {"application/json", "application/octet-stream"}
    assert set(infer["responses"]["200"]["content"]) == {"application/json", "application/octet-stream"}
