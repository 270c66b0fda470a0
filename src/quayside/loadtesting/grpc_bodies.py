"""``ModelInferRequest`` messages built from arrays, serialised once, for the gRPC load generator.

Each input goes in ``raw_input_contents`` (one entry per input, in the order of
``inputs``): its elements flat, row-major and little-endian, ``BYTES`` elements each
a 4-byte little-endian length and then their UTF-8 bytes — the layout the server
reads with :func:`numpy.frombuffer`, with no Python per element on either side.
The messages come from :mod:`quayside.oip`, imported when a body is built.
"""

from __future__ import annotations

import struct

import numpy as np

from quayside.packager.signature import Arrays, Schema, TensorSpec

SERVICE = "inference.GRPCInferenceService"
MODEL_INFER = f"/{SERVICE}/ModelInfer"
SERVER_READY = f"/{SERVICE}/ServerReady"
_LENGTH = struct.Struct("<I")


def raw_contents(values: np.ndarray, spec: TensorSpec) -> bytes:
    """One input's ``raw_input_contents`` entry."""
    if spec.dtype_info.name == "string":
        encoded = [str(item).encode() for item in values.ravel().tolist()]
        return b"".join(_LENGTH.pack(len(item)) + item for item in encoded)
    little_endian = np.dtype(spec.dtype_info.numpy).newbyteorder("<")
    return np.ascontiguousarray(values, dtype=little_endian).tobytes()


def model_infer_body(arrays: Arrays, schema: Schema, *, model_name: str) -> bytes:
    """A serialised ``ModelInferRequest`` for ``model_name`` carrying ``arrays`` raw."""
    from quayside.oip import grpc_predict_v2_pb2 as pb

    request = pb.ModelInferRequest(model_name=model_name)
    for spec in schema.specs:
        values = np.asarray(arrays[spec.name])
        tensor = request.inputs.add()
        tensor.name = spec.name
        tensor.datatype = spec.dtype_info.v2
        tensor.shape.extend(values.shape)
        request.raw_input_contents.append(raw_contents(values, spec))
    return bytes(request.SerializeToString())
