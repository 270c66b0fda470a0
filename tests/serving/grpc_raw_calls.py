"""``python -m tests.serving.grpc_raw_calls ADDRESS``: ModelInfer calls built from Quayside's own generated module.

Run in a process of its own by tests/serving/test_grpc.py: the generated messages and
``tritonclient.grpc``'s both define ``inference.*`` in protobuf's default descriptor pool,
so one process can import only one of them (the test process holds tritonclient's).
Prints one JSON object: for each case, the status code name and details, and the
outputs when the call succeeded.
"""

from __future__ import annotations

import json
import struct
import sys
from collections.abc import Callable
from typing import Any

import numpy as np

ROWS = np.array([[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [5.9, 3.0, 4.2, 1.5]], dtype=np.float32)
"""One iris flower of each species."""


def _typed(pb: Any, name: str, datatype: str, shape: list[int], field: str, values: list[Any]) -> Any:
    tensor = pb.ModelInferRequest.InferInputTensor(name=name, datatype=datatype, shape=shape)
    getattr(tensor.contents, field).extend(values)
    return tensor


def _raw(pb: Any, inputs: list[tuple[str, str, list[int], bytes]], **fields: Any) -> Any:
    request = pb.ModelInferRequest(model_name="iris", **fields)
    for name, datatype, shape, data in inputs:
        request.inputs.add(name=name, datatype=datatype, shape=shape)
        request.raw_input_contents.append(data)
    return request


def _bytes_elements(*elements: bytes) -> bytes:
    return b"".join(struct.pack("<I", len(e)) + e for e in elements)


def _fp32(pb: Any, rows: np.ndarray = ROWS) -> Any:
    return _typed(pb, "input", "FP32", list(rows.shape), "fp32_contents", rows.ravel().tolist())


def cases(pb: Any) -> dict[str, Callable[[], Any]]:
    """Each case's request, built on demand with the generated module ``pb``."""
    row = ROWS[:1]
    raw_row = row.tobytes()

    def request(*inputs: Any, **fields: Any) -> Any:
        return pb.ModelInferRequest(model_name="iris", inputs=list(inputs), **fields)

    return {
        # answered
        "typed fp32": lambda: request(_fp32(pb), id="typed-1"),
        "typed fp64 for a float32 input": lambda: request(
            _typed(pb, "input", "FP64", [3, 4], "fp64_contents", ROWS.astype(np.float64).ravel().tolist())
        ),
        "typed, one output asked for": lambda: request(
            _fp32(pb), outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="probabilities")]
        ),
        "raw fp32": lambda: _raw(pb, [("input", "FP32", [3, 4], ROWS.tobytes())]),
        # refused
        "unknown datatype": lambda: request(_typed(pb, "input", "FP99", [1, 4], "fp32_contents", [0.1] * 4)),
        "raw shape and data disagree": lambda: _raw(pb, [("input", "FP32", [1, 4], raw_row[:12])]),
        "typed shape and data disagree": lambda: request(
            _typed(pb, "input", "FP32", [1, 4], "fp32_contents", [0.1] * 3)
        ),
        "missing input": lambda: request(),
        "extra input": lambda: request(_fp32(pb), _typed(pb, "x", "FP32", [1], "fp32_contents", [1.0])),
        "wrong name": lambda: request(_typed(pb, "features", "FP32", [1, 4], "fp32_contents", [0.1] * 4)),
        "strings for floats (raw BYTES)": lambda: _raw(
            pb, [("input", "BYTES", [1, 4], _bytes_elements(b"a", b"b", b"c", b"d"))]
        ),
        "strings for floats (typed BYTES)": lambda: request(
            _typed(pb, "input", "BYTES", [1, 4], "bytes_contents", [b"a"] * 4)
        ),
        "data in the field of another datatype": lambda: request(
            _typed(pb, "input", "INT64", [1, 4], "fp32_contents", [0.1] * 4)
        ),
        "wrong shape": lambda: request(_typed(pb, "input", "FP32", [1, 3], "fp32_contents", [0.1] * 3)),
        "NaN where the signature does not allow it": lambda: _raw(
            pb, [("input", "FP32", [1, 4], np.array([[np.nan, 1, 1, 1]], dtype=np.float32).tobytes())]
        ),
        "negative dimension": lambda: request(
            _typed(pb, "input", "FP32", [-1, 4], "fp32_contents", [0.1] * 4)
        ),
        "raw entries and inputs disagree": lambda: _add_raw(_raw(pb, [("input", "FP32", [1, 4], raw_row)])),
        "raw and typed together": lambda: _raw_and_typed(pb, raw_row),
        "BYTES length past the end": lambda: _raw(
            pb, [("input", "BYTES", [1], struct.pack("<I", 100) + b"short")]
        ),
        "BYTES data left over": lambda: _raw(pb, [("input", "BYTES", [1], _bytes_elements(b"a", b"b"))]),
        "BYTES that are not UTF-8": lambda: request(
            _typed(pb, "input", "BYTES", [1], "bytes_contents", [b"\xff\xfe"])
        ),
        "input given twice": lambda: request(_fp32(pb), _fp32(pb)),
        "FP16 as typed contents": lambda: request(
            _typed(pb, "input", "FP16", [1, 4], "fp32_contents", [0.1] * 4)
        ),
        "INT8 out of range": lambda: request(_typed(pb, "input", "INT8", [1, 4], "int_contents", [300] * 4)),
        "unknown output asked for": lambda: request(
            _fp32(pb), outputs=[pb.ModelInferRequest.InferRequestedOutputTensor(name="nope")]
        ),
        "unknown version": lambda: request(_fp32(pb), model_version="7"),
    }


def _add_raw(request: Any) -> Any:
    request.raw_input_contents.append(b"\0" * 16)
    return request


def _raw_and_typed(pb: Any, raw_row: bytes) -> Any:
    request = _raw(pb, [("input", "FP32", [1, 4], raw_row)])
    request.inputs[0].contents.fp32_contents.extend([0.1] * 4)
    return request


def _outputs(response: Any) -> dict[str, Any]:
    outputs = {}
    for index, tensor in enumerate(response.outputs):
        fields = tensor.contents.ListFields()
        if response.raw_output_contents:
            dtype = {"INT64": np.int64, "FP64": np.float64, "FP32": np.float32}[tensor.datatype]
            data = np.frombuffer(response.raw_output_contents[index], dtype=dtype).tolist()
        else:
            data = list(fields[0][1]) if fields else []
        outputs[tensor.name] = {
            "datatype": tensor.datatype,
            "shape": list(tensor.shape),
            "typed": bool(fields),
            "data": data,
        }
    return outputs


DATATYPES = (
    "BOOL",
    "INT8",
    "INT32",
    "INT64",
    "UINT8",
    "UINT64",
    "FP16",
    "FP32",
    "FP64",
    "BYTES",
    "fp32",
    "X",
)
CONTENT_FIELDS = (
    "bool_contents",
    "int_contents",
    "int64_contents",
    "uint_contents",
    "fp32_contents",
    "bytes_contents",
)


def fuzzed(pb: Any, seed: int = 19, count: int = 300) -> list[bytes]:
    """Request bodies a careless or hostile client might send: valid ones cut short or with bytes
    flipped, and messages of random datatypes, shapes and contents (the same ones every run)."""
    rng = np.random.default_rng(seed)
    valid = pb.ModelInferRequest(model_name="iris", inputs=[_fp32(pb)]).SerializeToString()
    bodies: list[bytes] = []
    for _ in range(count // 3):
        bodies.append(valid[: int(rng.integers(0, len(valid)))])
        flipped = bytearray(valid)
        for index in rng.integers(0, len(valid), size=int(rng.integers(1, 6))):
            flipped[index] = int(rng.integers(0, 256))
        bodies.append(bytes(flipped))
        shape = [int(d) for d in rng.integers(-2, 6, size=int(rng.integers(0, 4)))]
        tensor = pb.ModelInferRequest.InferInputTensor(
            name=str(rng.choice(["input", "x", ""])), datatype=str(rng.choice(DATATYPES)), shape=shape
        )
        request = pb.ModelInferRequest(model_name="iris", inputs=[tensor])
        if rng.random() < 0.5:
            request.raw_input_contents.append(rng.bytes(int(rng.integers(0, 64))))
        else:
            field = getattr(tensor.contents, str(rng.choice(CONTENT_FIELDS)))
            values = rng.integers(-300, 300, size=int(rng.integers(0, 20)))
            _extend(field, values)
        bodies.append(request.SerializeToString())
    return bodies


def _extend(field: Any, values: np.ndarray) -> None:
    for value in values.tolist():
        for candidate in (value, abs(value), float(value), bool(value), bytes([abs(value) % 256])):
            try:
                field.append(candidate)
                break
            except (TypeError, ValueError):
                continue


def main(address: str) -> None:
    import grpc

    from quayside.oip import grpc_predict_v2_pb2 as pb
    from quayside.oip import grpc_predict_v2_pb2_grpc as pb_grpc

    results: dict[str, Any] = {}
    with grpc.insecure_channel(address) as channel:
        stub = pb_grpc.GRPCInferenceServiceStub(channel)
        # bytes that are no ModelInferRequest, sent as one
        undecodable = channel.unary_unary("/inference.GRPCInferenceService/ModelInfer")
        try:
            undecodable(b"\xff\xff\xff garbage", timeout=30)
        except grpc.RpcError as e:
            results["not a ModelInferRequest"] = {"code": e.code().name, "details": e.details()}
        fuzz_codes: dict[str, int] = {}
        for body in fuzzed(pb):
            try:
                undecodable(body, timeout=30)
                code = "OK"
            except grpc.RpcError as e:
                code = e.code().name
            fuzz_codes[code] = fuzz_codes.get(code, 0) + 1
        results["fuzzed"] = {"code": "-", "codes": fuzz_codes}
        for name, build in cases(pb).items():
            try:
                response = stub.ModelInfer(build(), timeout=30)
            except grpc.RpcError as e:
                results[name] = {"code": e.code().name, "details": e.details()}
                continue
            results[name] = {
                "code": "OK",
                "id": response.id,
                "raw": len(response.raw_output_contents),
                "outputs": _outputs(response),
            }
    print(json.dumps(results))


if __name__ == "__main__":
    main(sys.argv[1])
