"""The gRPC Open Inference Protocol beside REST, against a real ``quayside serve`` process.

NVIDIA's ``tritonclient.grpc`` is the client: what Triton and KServe users already run.
Calls built from Quayside's own generated module (typed contents, malformed requests)
run in a process of their own (tests/serving/grpc_raw_calls.py): the two define the
same ``inference.*`` messages, and protobuf's default pool takes each name once.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import grpc
import httpx
import numpy as np
import pytest
import tritonclient.grpc as triton
from grpc_health.v1 import health_pb2, health_pb2_grpc
from tritonclient.utils import InferenceServerException

import quayside
from tests.serving.conftest import RunningServer, free_port, start_server, v2_error

REPO = Path(__file__).resolve().parents[2]
OIP_PACKAGE = REPO / "src" / "quayside" / "oip"
TOKEN = "a-grpc-token-of-sixteen-or-more"


@pytest.fixture(scope="module")
def iris_rows() -> np.ndarray:
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    return X.astype(np.float32)


@pytest.fixture(scope="module")
def iris_package(tmp_path_factory, iris_rows) -> Path:
    """A RandomForest on iris's four float32 features, converted to ONNX."""
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    _, y = load_iris(return_X_y=True)
    model = RandomForestClassifier(n_estimators=20, random_state=0).fit(iris_rows, y)
    path = tmp_path_factory.mktemp("grpc") / "iris"
    quayside.save_model(model, path, input_example=iris_rows[:5], to_onnx=True, name="iris")
    return path


@pytest.fixture(scope="module")
def expected(iris_package):
    model = quayside.load_model(iris_package)
    return lambda rows: model.predict(rows)


@pytest.fixture(scope="module")
def server(iris_package, tmp_path_factory) -> Iterator[RunningServer]:
    """The module's server, with default settings but its ports."""
    grpc_port = free_port()
    running = start_server(
        iris_package, "--grpc-port", str(grpc_port), log_dir=tmp_path_factory.mktemp("grpc-log")
    )
    running.grpc_address = f"127.0.0.1:{grpc_port}"  # type: ignore[attr-defined]
    yield running
    running.stop()


@pytest.fixture(scope="module")
def client(server) -> Iterator[triton.InferenceServerClient]:
    with triton.InferenceServerClient(server.grpc_address) as grpc_client:
        yield grpc_client


def infer_input(name: str, rows: np.ndarray, datatype: str = "FP32") -> triton.InferInput:
    tensor = triton.InferInput(name, list(rows.shape), datatype)
    tensor.set_data_from_numpy(rows)
    return tensor


def listening_ports(pid: int) -> set[int]:
    """The TCP ports process ``pid`` listens on (its socket inodes matched in /proc/<pid>/net)."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[len("socket:[") : -1])
    ports = set()
    for table in ("tcp", "tcp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def in_flight(server: RunningServer) -> float:
    metrics = httpx.get(f"{server.url}/metrics").text
    counts = re.findall(
        r'^quayside_requests_in_flight\{model="[^"]*",version="[^"]*"\} (\S+)$', metrics, re.M
    )
    return sum(float(count) for count in counts)


def rest_error(server: RunningServer, body: dict, model: str = "iris") -> str:
    response = httpx.post(f"{server.url}/v2/models/{model}/infer", json=body)
    assert response.status_code >= 400, response.text
    return v2_error(response)[1]


# --- health, metadata, inference with tritonclient ---------------------------------------------


def test_tritonclient_sees_a_live_ready_server_and_the_models_metadata(client):
    assert client.is_server_live() and client.is_server_ready() and client.is_model_ready("iris")
    metadata = client.get_server_metadata()
    assert metadata.name == "quayside" and "model_repository" in metadata.extensions
    model = client.get_model_metadata("iris", as_json=True)
    assert model["name"] == "iris" and model["platform"] == "onnxruntime_onnx"
    assert model["inputs"] == [{"name": "input", "datatype": "FP32", "shape": ["-1", "4"]}]
    assert [(o["name"], o["datatype"], o["shape"]) for o in model["outputs"]] == [
        ("label", "INT64", ["-1"]),
        ("probabilities", "FP64", ["-1", "3"]),
    ]


def test_the_standard_grpc_health_service_says_serving(server):
    with grpc.insecure_channel(server.grpc_address) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        for service in ("", "inference.GRPCInferenceService"):
            answer = health.Check(health_pb2.HealthCheckRequest(service=service), timeout=5)
            assert answer.status == health_pb2.HealthCheckResponse.SERVING


def test_infer_with_raw_contents_answers_the_packages_own_predictions(client, iris_rows, expected):
    rows = iris_rows[[0, 60, 120, 75, 140]]
    result = client.infer("iris", [infer_input("input", rows)], request_id="req-7")
    want = expected(rows)
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"], rtol=1e-6)
    response = result.get_response()
    assert response.id == "req-7" and response.model_name == "iris"
    assert len(response.raw_output_contents) == 2  # raw in, raw out


def test_a_1000_row_request_answers_1000_correct_rows(client, iris_rows, expected):
    rows = iris_rows[np.random.default_rng(3).integers(0, len(iris_rows), 1000)]
    result = client.infer("iris", [infer_input("input", rows)])
    assert result.as_numpy("label").shape == (1000,)
    np.testing.assert_array_equal(result.as_numpy("label"), expected(rows)["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected(rows)["probabilities"], rtol=1e-6)


def test_only_the_outputs_asked_for_are_answered(client, iris_rows, expected):
    rows = iris_rows[:3]
    result = client.infer(
        "iris", [infer_input("input", rows)], outputs=[triton.InferRequestedOutput("probabilities")]
    )
    assert [o.name for o in result.get_response().outputs] == ["probabilities"]
    np.testing.assert_allclose(result.as_numpy("probabilities"), expected(rows)["probabilities"], rtol=1e-6)


def test_a_table_model_takes_its_columns_as_tensors_strings_as_length_prefixed_bytes(
    table_package, mixed_pipeline, tmp_path
):
    _, X = mixed_pipeline
    rows = X.iloc[50:56]
    grpc_port = free_port()
    running = start_server(table_package, "--grpc-port", str(grpc_port), log_dir=tmp_path)
    try:
        with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as table_client:
            inputs = [
                infer_input("income", rows["income"].to_numpy(), "FP64"),
                infer_input("age", rows["age"].to_numpy().astype(np.int64).reshape(-1, 1), "INT64"),
                infer_input("plan", rows["plan"].to_numpy().astype(object), "BYTES"),
            ]
            result = table_client.infer("plans", inputs)
    finally:
        running.stop()
    want = quayside.load_model(table_package).predict(rows)
    np.testing.assert_array_equal(result.as_numpy("label"), want["label"])
    np.testing.assert_allclose(result.as_numpy("probabilities"), want["probabilities"], rtol=1e-6)


def test_concurrent_calls_each_get_their_own_rows(client, iris_rows, expected):
    answers: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        rows = iris_rows[i : i + 1 + i % 3]
        answers[i] = client.infer("iris", [infer_input("input", rows)]).as_numpy("label")

    threads = [threading.Thread(target=call, args=(i,)) for i in range(40)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    for i in range(40):
        np.testing.assert_array_equal(answers[i], expected(iris_rows[i : i + 1 + i % 3])["label"])


# --- errors: the REST message, under the gRPC code of its class ---------------------------------

ROW = np.array([[5.1, 3.5, 1.4, 0.2]], dtype=np.float32)
ERROR_CASES = [
    # (case id, model, tritonclient inputs, the same request over REST, expected gRPC status)
    (
        "wrong input name",
        "iris",
        lambda: [infer_input("features", ROW)],
        {"inputs": [{"name": "features", "datatype": "FP32", "shape": [1, 4], "data": ROW.ravel().tolist()}]},
        "INVALID_ARGUMENT",
    ),
    (
        "wrong shape",
        "iris",
        lambda: [infer_input("input", ROW[:, :3].copy())],
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 3], "data": ROW[0, :3].tolist()}]},
        "INVALID_ARGUMENT",
    ),
    (
        "wrong datatype",
        "iris",
        lambda: [infer_input("input", np.array([["a", "b", "c", "d"]], dtype=object), "BYTES")],
        {"inputs": [{"name": "input", "datatype": "BYTES", "shape": [1, 4], "data": ["a", "b", "c", "d"]}]},
        "INVALID_ARGUMENT",
    ),
    (
        "unknown model",
        "tulips",
        lambda: [infer_input("input", ROW)],
        {"inputs": [{"name": "input", "datatype": "FP32", "shape": [1, 4], "data": ROW.ravel().tolist()}]},
        "NOT_FOUND",
    ),
]


@pytest.mark.parametrize(
    ("model", "inputs", "rest_body", "status"), [c[1:] for c in ERROR_CASES], ids=[c[0] for c in ERROR_CASES]
)
def test_a_bad_request_gets_its_status_code_and_the_rest_message(
    server, client, model, inputs, rest_body, status
):
    with pytest.raises(InferenceServerException) as caught:
        client.infer(model, inputs())
    assert caught.value.status() == f"StatusCode.{status}"
    assert caught.value.message() == rest_error(server, rest_body, model)


def test_every_error_class_has_a_grpc_status_and_no_client_error_is_internal():
    from quayside import errors
    from quayside.serving.grpc.status import STATUS_BY_HTTP_STATUS, status_code

    classes = [
        c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.QuaysideError)
    ]
    assert len(classes) > 20
    for cls in classes:
        assert cls.http_status in STATUS_BY_HTTP_STATUS, cls.__name__
        if cls.http_status < 500:
            assert STATUS_BY_HTTP_STATUS[cls.http_status] not in (
                grpc.StatusCode.INTERNAL,
                grpc.StatusCode.UNKNOWN,
            )
    assert status_code(errors.SignatureError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(errors.MalformedInputError("x")) == grpc.StatusCode.INVALID_ARGUMENT
    assert status_code(errors.PayloadTooLargeError("x")) == grpc.StatusCode.RESOURCE_EXHAUSTED
    assert status_code(errors.UnavailableError("x")) == grpc.StatusCode.UNAVAILABLE


def test_a_grpc_port_on_the_http_port_or_out_of_range_is_refused():
    from quayside.errors import UsageError
    from quayside.serving.options import ServeOptions

    with pytest.raises(UsageError, match=r"must differ from the HTTP port \(9000\)"):
        ServeOptions(port=9000, grpc_port=9000)
    with pytest.raises(UsageError, match="1-65535"):
        ServeOptions(grpc_port=70000)
    assert ServeOptions(port=9000, grpc_port=0).grpc_port == 0


def test_a_message_over_the_body_limit_is_resource_exhausted(client):
    rows = np.zeros((700_000, 4), dtype=np.float32)  # 11.2 MB against the default 10 MiB
    with pytest.raises(InferenceServerException) as caught:
        client.infer("iris", [infer_input("input", rows)])
    assert caught.value.status() == "StatusCode.RESOURCE_EXHAUSTED"
    assert client.is_server_ready()


def test_the_model_version_is_checked_as_the_name_is(client):
    with pytest.raises(InferenceServerException) as caught:
        client.get_model_metadata("iris", model_version="3")
    assert caught.value.status() == "StatusCode.NOT_FOUND"
    assert "no version '3' of model 'iris'" in caught.value.message()
    with pytest.raises(InferenceServerException) as caught:
        client.is_model_ready("tulips")
    assert caught.value.status() == "StatusCode.NOT_FOUND"


# --- calls built from Quayside's generated module, in a process of their own --------------------

RAW_CASES = [
    # (case, status, words the details must hold)
    ("not a ModelInferRequest", "INVALID_ARGUMENT", "not a valid inference.ModelInferRequest message"),
    ("unknown datatype", "INVALID_ARGUMENT", "unknown datatype 'FP99'"),
    ("raw shape and data disagree", "INVALID_ARGUMENT", "needs 4 values (16 bytes of FP32), got 12 bytes"),
    ("typed shape and data disagree", "INVALID_ARGUMENT", "shape [1, 4] needs 4 values, got 3"),
    ("missing input", "INVALID_ARGUMENT", "missing input 'input'"),
    ("extra input", "INVALID_ARGUMENT", "unexpected input 'x'"),
    ("wrong name", "INVALID_ARGUMENT", "missing input 'input'"),
    ("strings for floats (raw BYTES)", "INVALID_ARGUMENT", "expected float32, got str"),
    ("strings for floats (typed BYTES)", "INVALID_ARGUMENT", "expected float32, got str"),
    ("data in the field of another datatype", "INVALID_ARGUMENT", "goes in contents.int64_contents"),
    ("wrong shape", "INVALID_ARGUMENT", "got shape (1, 3)"),
    ("NaN where the signature does not allow it", "INVALID_ARGUMENT", "NaN or infinity"),
    ("negative dimension", "INVALID_ARGUMENT", "non-negative integers"),
    ("raw entries and inputs disagree", "INVALID_ARGUMENT", "raw_input_contents has 2 entries for 1 inputs"),
    ("raw and typed together", "INVALID_ARGUMENT", "send every input raw or every input typed"),
    ("BYTES length past the end", "INVALID_ARGUMENT", "declares 100 bytes but only 5 follow"),
    ("BYTES data left over", "INVALID_ARGUMENT", "bytes are left after them"),
    ("BYTES that are not UTF-8", "INVALID_ARGUMENT", "not UTF-8"),
    ("input given twice", "INVALID_ARGUMENT", "given twice"),
    ("FP16 as typed contents", "INVALID_ARGUMENT", "no typed contents field"),
    ("INT8 out of range", "INVALID_ARGUMENT", "outside the range of int8"),
    ("unknown output asked for", "INVALID_ARGUMENT", "unknown output 'nope'"),
    ("unknown version", "NOT_FOUND", "no version '7' of model 'iris'"),
]


@pytest.fixture(scope="module")
def raw_calls(server) -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, "-m", "tests.serving.grpc_raw_calls", server.grpc_address],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    return json.loads(result.stdout)


def test_every_raw_call_case_is_asserted(raw_calls):
    answered = {"typed fp32", "typed fp64 for a float32 input", "typed, one output asked for", "raw fp32"}
    assert set(raw_calls) == answered | {c[0] for c in RAW_CASES} | {"fuzzed"}


def test_300_fuzzed_request_bodies_are_answered_or_refused_as_bad_input_never_unknown_or_internal(raw_calls):
    codes = raw_calls["fuzzed"]["codes"]
    assert sum(codes.values()) == 300
    assert set(codes) <= {"OK", "INVALID_ARGUMENT", "NOT_FOUND"}, codes
    assert codes.get("INVALID_ARGUMENT", 0) > 150  # most of them are broken


@pytest.mark.parametrize(("case", "status", "words"), RAW_CASES, ids=[c[0] for c in RAW_CASES])
def test_bad_input_over_grpc_is_refused_with_its_code_never_unknown_or_internal(
    raw_calls, case, status, words
):
    answer = raw_calls[case]
    assert answer["code"] == status, answer
    assert words in answer["details"]


def test_typed_contents_are_answered_in_typed_contents(raw_calls, expected):
    from tests.serving.grpc_raw_calls import ROWS

    want = expected(ROWS)
    for case in ("typed fp32", "typed fp64 for a float32 input"):
        answer = raw_calls[case]
        assert answer["code"] == "OK" and answer["raw"] == 0, answer
        label, probabilities = answer["outputs"]["label"], answer["outputs"]["probabilities"]
        assert label["typed"] and label["datatype"] == "INT64" and label["shape"] == [3]
        assert label["data"] == want["label"].tolist()
        assert probabilities["shape"] == [3, 3]
        np.testing.assert_allclose(probabilities["data"], want["probabilities"].ravel(), rtol=1e-6)
    assert raw_calls["typed fp32"]["id"] == "typed-1"
    assert list(raw_calls["typed, one output asked for"]["outputs"]) == ["probabilities"]
    raw = raw_calls["raw fp32"]
    assert raw["raw"] == 2 and raw["outputs"]["label"]["data"] == want["label"].tolist()


def test_no_grpc_call_reached_a_500_and_each_is_counted_by_method(server, raw_calls, client):
    metrics = httpx.get(f"{server.url}/metrics").text
    assert 'route="/inference.GRPCInferenceService/ModelInfer",status="200"' in metrics
    assert 'route="/inference.GRPCInferenceService/ModelInfer",status="400"' in metrics
    assert 'route="/inference.GRPCInferenceService/ModelInfer",status="422"' in metrics
    assert 'status="500"' not in metrics


# --- the model repository extension ----------------------------------------------------------


def test_the_repository_index_lists_the_served_model_and_a_new_one_needs_a_uri(client):
    """Loading and unloading other models is tests/serving/test_multi_model.py's."""
    index = client.get_model_repository_index(as_json=True)
    assert index["models"] == [{"name": "iris", "state": "READY"}]
    client.load_model("iris")  # already loaded from where it was: OK, nothing reloads
    with pytest.raises(InferenceServerException) as caught:
        client.load_model("tulips")
    assert caught.value.status() == "StatusCode.INVALID_ARGUMENT"
    assert "no model 'tulips' to load" in caught.value.message()
    assert client.is_model_ready("iris")


def test_without_model_control_loads_and_unloads_are_refused_over_grpc_and_rest(server, client, tmp_path):
    """A load reads any path the server can reach: only ``--model-control`` lets callers ask for one."""
    with pytest.raises(InferenceServerException) as caught:
        client.unload_model("iris")
    assert caught.value.status() == "StatusCode.PERMISSION_DENIED"
    assert "--model-control" in caught.value.message()
    load = httpx.post(
        f"{server.url}/v2/repository/models/iris/load", json={"parameters": {"uri": str(tmp_path)}}
    )
    assert load.status_code == 403 and "--model-control" in load.json()["error"]
    unload = httpx.post(f"{server.url}/v2/repository/models/iris/unload")
    assert unload.status_code == 403
    assert client.is_model_ready("iris")


# --- listeners, ports, tokens, shutdown -------------------------------------------------------


def test_the_server_listens_on_its_http_and_grpc_ports_and_grpc_port_0_leaves_only_http(
    server, iris_package, tmp_path
):
    http_port = int(server.url.rsplit(":", 1)[1])
    grpc_port = int(server.grpc_address.rsplit(":", 1)[1])
    assert listening_ports(server.process.pid) == {http_port, grpc_port}
    rest_only = start_server(iris_package, "--grpc-port", "0", log_dir=tmp_path)
    try:
        assert listening_ports(rest_only.process.pid) == {int(rest_only.url.rsplit(":", 1)[1])}
        assert "gRPC" not in rest_only.log()
    finally:
        assert rest_only.stop() == 0


def test_a_second_server_on_a_taken_grpc_port_refuses_to_start_with_one_line(server, iris_package):
    result = subprocess.run(
        [sys.executable, "-m", "quayside", "serve", str(iris_package), "--port", str(free_port()),
         "--grpc-port", server.grpc_address.rsplit(":", 1)[1]],
        capture_output=True,
        text=True,
        timeout=120,
    )  # fmt: skip
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"error: cannot listen for gRPC on {server.grpc_address}: the port is in use")
    )


def test_with_a_token_inference_needs_it_and_the_probes_do_not(iris_package, tmp_path):
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    grpc_port = free_port()
    running = start_server(
        iris_package, "--grpc-port", str(grpc_port), "--auth-token-file", str(token_file), log_dir=tmp_path
    )
    try:
        with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as anonymous:
            assert anonymous.is_server_live() and anonymous.is_server_ready()
            assert anonymous.is_model_ready("iris")
            with pytest.raises(InferenceServerException) as caught:
                anonymous.infer("iris", [infer_input("input", ROW)])
            assert caught.value.status() == "StatusCode.UNAUTHENTICATED"
            rest = httpx.post(f"{running.url}/v2/models/iris/infer", json={"inputs": []})
            assert caught.value.message() == v2_error(rest)[1]
            headers = {"authorization": f"Bearer {TOKEN}"}
            answer = anonymous.infer("iris", [infer_input("input", ROW)], headers=headers)
            assert answer.as_numpy("label").shape == (1,)
    finally:
        running.stop()


def test_two_workers_share_the_grpc_port_and_both_answer(iris_package, tmp_path, iris_rows, expected):
    grpc_port = free_port()
    running = start_server(
        iris_package, "--workers", "2", "--grpc-port", str(grpc_port), log_dir=tmp_path, ready_timeout=90
    )
    try:
        # Ready over HTTP means one worker is; wait for the other one's gRPC listener too.
        deadline = time.monotonic() + 60
        while running.log().count("gRPC (KServe Open Inference Protocol") < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        pid = running.process.pid
        workers = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        assert sum(grpc_port in listening_ports(int(worker)) for worker in workers) == 2
        for i in range(20):  # a fresh connection each time: the kernel spreads them over the workers
            with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as fresh:
                rows = iris_rows[i * 7 : i * 7 + 3]
                labels = fresh.infer("iris", [infer_input("input", rows)]).as_numpy("label")
                np.testing.assert_array_equal(labels, expected(rows)["label"])
    finally:
        assert running.stop() == 0


def test_sigterm_lets_in_flight_grpc_calls_finish_then_exits_0(slow_package, tmp_path):
    grpc_port = free_port()
    running = start_server(
        slow_package, "--trust", "--quiet", "--grpc-port", str(grpc_port), log_dir=tmp_path
    )
    answers: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def call(i: int) -> None:
        with triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as own:
            rows = np.full((1, 3), float(i))
            try:
                result = own.infer("slow", [infer_input("input", rows, "FP64")], client_timeout=30)
            except InferenceServerException as e:
                with lock:
                    errors.append(f"{e.status()}: {e.message()}")
                return
            with lock:
                answers.append(float(result.as_numpy("prediction")[0]) - 3 * i)

    threads = [threading.Thread(target=call, args=(i,)) for i in range(10)]
    for thread in threads:
        thread.start()
    try:
        deadline = time.monotonic() + 10
        while in_flight(running) < 10 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert in_flight(running) == 10
        running.process.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with (
            triton.InferenceServerClient(f"127.0.0.1:{grpc_port}") as late,
            pytest.raises(InferenceServerException) as caught,
        ):
            late.is_server_ready(client_timeout=5)
        assert caught.value.status() == "StatusCode.UNAVAILABLE"  # no new calls once draining
        for thread in threads:
            thread.join(30)
        assert running.process.wait(30) == 0
    finally:
        running.stop()
    assert errors == []
    assert answers == [0.0] * 10  # each caller got the sum of its own row
    assert "readiness is now false" in running.log()


# --- the proto and its generated modules -------------------------------------------------------

DESCRIBE = """
import json, sys
from google.protobuf import descriptor_pb2
module = __import__(sys.argv[1], fromlist=["DESCRIPTOR"])
file = descriptor_pb2.FileDescriptorProto()
module.DESCRIPTOR.CopyToProto(file)
messages = {}
def walk(message, prefix):
    for nested in message.nested_type:
        walk(nested, prefix + message.name + ".")
    messages[prefix + message.name] = sorted(
        [f.name, f.number, f.type, f.label, f.type_name.rsplit(".", 1)[-1], f.HasField("oneof_index")]
        for f in message.field
    )
for message in file.message_type:
    walk(message, "")
services = {
    s.name: {m.name: [m.input_type, m.output_type, m.server_streaming] for m in s.method} for s in file.service
}
print(json.dumps({"package": file.package, "messages": messages, "services": services}))
"""


def describe(module: str) -> dict:
    """A generated module's messages (fields: name, number, type, label) and services, from its descriptor."""
    result = subprocess.run(
        [sys.executable, "-c", DESCRIBE, module], capture_output=True, text=True, check=True, cwd=REPO
    )
    return json.loads(result.stdout)


def test_every_message_and_method_is_numbered_as_tritonclient_numbers_it():
    ours = describe("quayside.oip.grpc_predict_v2_pb2")
    triton_ = describe("tritonclient.grpc.service_pb2")
    assert ours["package"] == triton_["package"] == "inference"
    assert len(ours["messages"]) >= 30
    for name, fields in ours["messages"].items():
        assert fields == triton_["messages"][name], name
    (methods,) = ours["services"].values()
    assert set(methods) == {
        "ServerLive", "ServerReady", "ModelReady", "ServerMetadata", "ModelMetadata", "ModelInfer",
        "RepositoryIndex", "RepositoryModelLoad", "RepositoryModelUnload",
    }  # fmt: skip
    for name, signature in methods.items():
        assert signature == triton_["services"]["GRPCInferenceService"][name], name


def test_regenerating_the_modules_from_the_proto_gives_the_committed_files(tmp_path):
    subprocess.run(
        [sys.executable, "-m", "quayside.oip.generate", str(tmp_path)],
        capture_output=True,
        text=True,
        check=True,
        cwd=REPO,
    )
    for name in ("grpc_predict_v2_pb2.py", "grpc_predict_v2_pb2_grpc.py"):
        assert (tmp_path / name).read_bytes() == (OIP_PACKAGE / name).read_bytes(), (
            f"{name} is stale: run python -m quayside.oip.generate"
        )
