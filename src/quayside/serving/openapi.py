"""OpenAPI request schemas and examples generated from a model's signature.

``/docs`` then shows the model's real input names, types and shapes, and a
"Try it out" body taken from the package's input example.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from quayside.packager.example import decode_example
from quayside.packager.manifest import Manifest
from quayside.packager.signature import Arrays, Schema, TensorSpec

_JSON_TYPES = {"f": "number", "i": "integer", "u": "integer", "b": "boolean", "O": "string"}
_BINARY_BODY = {"schema": {"type": "string", "format": "binary"}}

V2_BINARY_EXTENSION = """\
A JSON request as below, or one framed by Triton's *binary tensor data extension*
(what `tritonclient.http` sends by default): with the header
`Inference-Header-Content-Length: N`, the first N bytes of the body are the JSON
request, and each input whose `parameters` hold `binary_data_size` takes that many of
the bytes after it, in input order, instead of `data`: its values raw, little-endian and
row-major, or for `BYTES` each element as a 4-byte little-endian length and its UTF-8
bytes. Outputs asked for with `"parameters": {"binary_data": true}` (or every output,
with `"parameters": {"binary_data_output": true}` on the request) are answered the same
way: `Content-Type: application/octet-stream`, `Inference-Header-Content-Length` naming
the JSON header's length, and `binary_data_size` in each binary output's `parameters`.
A body whose framing does not add up (a length past the body's end, a size that does not
fit the tensor's shape and datatype, bytes left over) is a 400 naming the problem."""
"""The V2 infer route's description in ``/docs``: the binary tensor data extension."""

V2_HEADER_LENGTH_PARAMETER: dict[str, Any] = {
    "name": "Inference-Header-Content-Length",
    "in": "header",
    "required": False,
    "description": "binary tensor data extension: the length of the JSON header at the body's start",
    "schema": {"type": "integer", "minimum": 0},
}
"""The V2 infer route's optional header of the binary tensor data extension."""

V2_RESPONSE: dict[str, Any] = {
    "description": "The outputs; with outputs asked for in binary, a JSON header and then their bytes",
    "content": {"application/json": {"schema": {"type": "object"}}, "application/octet-stream": _BINARY_BODY},
}
"""The V2 infer route's 200 answer: JSON, or framed by the binary tensor data extension."""


def _value_schema(spec: TensorSpec) -> dict[str, Any]:
    schema: dict[str, Any] = {"type": _JSON_TYPES[spec.dtype_info.numpy.kind]}
    if spec.allow_nan and spec.dtype_info.is_float:
        schema = {"anyOf": [schema, {"type": "null"}]}
    return schema


def _plain(array: np.ndarray) -> list[Any]:
    """Nested lists for JSON, with NaN and infinity as null (JSON has neither)."""
    if array.dtype.kind == "f":
        return np.where(np.isfinite(array), array, None).tolist()
    return array.tolist()


def _example_arrays(manifest: Manifest) -> Arrays | None:
    if manifest.input_example is None:
        return None
    return decode_example(manifest.input_example, manifest.signature.inputs)


def _v2_tensor(spec: TensorSpec) -> dict[str, Any]:
    return {
        "type": "object",
        "title": spec.name,
        "required": ["name", "datatype", "shape", "data"],
        "properties": {
            "name": {"type": "string", "enum": [spec.name]},
            "datatype": {"type": "string", "enum": [spec.dtype_info.v2]},
            "shape": {
                "type": "array",
                "items": {"type": "integer", "minimum": 0},
                "description": f"signature shape {list(spec.shape)} (-1: any size)",
            },
            "data": {
                "type": "array",
                "items": _value_schema(spec),
                "description": "row-major, flat or nested",
            },
        },
    }


def _binary_flag(name: str, what: str) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {
            name: {"type": "boolean", "description": f"true: {what} as binary data after the JSON header"}
        },
    }


def v2_request_schema(manifest: Manifest) -> dict[str, Any]:
    """The JSON schema (with an example) of a V2 inference request for this model."""
    inputs = manifest.signature.inputs
    outputs = manifest.signature.outputs
    schema: dict[str, Any] = {
        "type": "object",
        "required": ["inputs"],
        "properties": {
            "id": {"type": "string"},
            "inputs": {
                "type": "array",
                "minItems": len(inputs.specs),
                "maxItems": len(inputs.specs),
                "items": {"oneOf": [_v2_tensor(spec) for spec in inputs.specs]},
            },
            "outputs": {
                "type": "array",
                "items": {
                    "type": "object",
                    "required": ["name"],
                    "properties": {
                        "name": {"type": "string", "enum": outputs.names},
                        "parameters": _binary_flag("binary_data", "this output's data"),
                    },
                },
            },
            "parameters": _binary_flag("binary_data_output", "every output's data"),
        },
    }
    example = _example_arrays(manifest)
    if example is not None:
        schema["example"] = {
            "inputs": [
                {
                    "name": spec.name,
                    "datatype": spec.dtype_info.v2,
                    "shape": list(example[spec.name].shape),
                    "data": _plain(example[spec.name].reshape(-1)),
                }
                for spec in inputs.specs
            ]
        }
    return schema


def _row_schema(inputs: Schema) -> dict[str, Any]:
    return {
        "type": "object",
        "required": inputs.names,
        "additionalProperties": False,
        "properties": {spec.name: _value_schema(spec) for spec in inputs.specs},
    }


def invocations_request_schema(manifest: Manifest) -> dict[str, Any]:
    """The JSON schema (with an example) of an ``/invocations`` JSON body for this model."""
    inputs = manifest.signature.inputs
    columns = {"type": "array", "items": {"type": "string", "enum": inputs.names}}
    layouts = {
        "dataframe_split": {
            "type": "object",
            "required": ["data"],
            "properties": {"columns": columns, "data": {"type": "array", "items": {"type": "array"}}},
        },
        "dataframe_records": {"type": "array", "items": _row_schema(inputs)},
        "instances": {"type": "array"},
        "inputs": {"oneOf": [{"type": "array"}, _row_schema(inputs) | {"required": inputs.names}]},
    }
    schema: dict[str, Any] = {
        "description": "exactly one of the layouts below (MLflow's scoring protocol); or send text/csv",
        "oneOf": [
            {"type": "object", "title": name, "required": [name], "properties": {name: layout}}
            for name, layout in layouts.items()
        ],
    }
    example = _example_arrays(manifest)
    if example is not None:
        schema["example"] = _invocations_example(example, inputs)
    return schema


def _invocations_example(example: Arrays, inputs: Schema) -> dict[str, Any]:
    if inputs.kind == "table":
        columns = [_plain(example[name]) for name in inputs.names]
        return {
            "dataframe_split": {
                "columns": inputs.names,
                "data": [list(row) for row in zip(*columns, strict=True)],
            }
        }
    if len(inputs.specs) == 1:
        return {"inputs": _plain(example[inputs.names[0]])}
    return {"inputs": {name: _plain(example[name]) for name in inputs.names}}
