"""Request bodies generated from a signature and an input example, for V2, ``/invocations`` and gRPC.

Rows are drawn with :func:`quayside.packager.example.sample_like`: numbers
uniformly within the example's per-column ranges (integers stay integers),
booleans and strings from the values the example holds. Without an example
(a server known only by its V2 metadata) :func:`placeholder_example` stands in:
numbers in [0, 1] (integers in [0, 10]), ``True``/``False``, and ``"a"``/``"b"``.
Bodies are serialised once, up front, so the load generator only sends bytes: JSON
for REST, a ``ModelInferRequest`` with raw contents for gRPC
(:mod:`~quayside.loadtesting.grpc_bodies`), from the same rows for the same seed.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from quayside.errors import UsageError
from quayside.packager.bodies import invocations_body, v2_body
from quayside.packager.example import sample_like
from quayside.packager.signature import DTYPES, Arrays, Schema, TensorSpec

Protocol = Literal["v2", "invocations", "grpc"]
PROTOCOLS: tuple[Protocol, ...] = ("v2", "invocations", "grpc")
JSON = "application/json"
GRPC = "application/grpc"
_BY_V2_NAME = {d.v2: d for d in DTYPES.values()}


@dataclass(frozen=True)
class Payloads:
    """What one simulated user sends: the path (for gRPC, the method), its content type, and ready bodies."""

    protocol: Protocol
    path: str
    content_type: str
    bodies: tuple[bytes, ...]
    rows: int


def schema_from_v2_metadata(document: Mapping[str, Any]) -> Schema:
    """The input schema a server's ``GET /v2/models/{name}`` describes.

    V2 metadata does not say whether inputs are table columns or tensors; inputs
    that are all one-dimensional ``[-1]`` are read as a table (the bodies are the
    same either way for V2, and ``dataframe_split`` for ``/invocations``).
    """
    raw = document.get("inputs")
    if not isinstance(raw, list) or not raw:
        raise UsageError("the server's model metadata lists no inputs")
    specs = []
    for item in raw:
        datatype = _BY_V2_NAME.get(str(item.get("datatype", "")).upper())
        if datatype is None:
            raise UsageError(f"the server names an unknown V2 datatype {item.get('datatype')!r}")
        specs.append(TensorSpec(str(item["name"]), datatype.name, tuple(int(d) for d in item["shape"])))
    kind = "table" if all(s.shape == (-1,) for s in specs) and len(specs) > 1 else "tensors"
    return Schema(kind, tuple(specs))


def _placeholder_values(spec: TensorSpec) -> np.ndarray:
    shape = (2, *(1 if d == -1 else d for d in spec.shape[1:])) if spec.batched else spec.shape
    shape = tuple(1 if d == -1 else d for d in shape)
    info = spec.dtype_info
    if info.name == "bool":
        return np.resize(np.array([False, True]), shape)
    if info.name == "string":
        return np.resize(np.array(["a", "b"], dtype=object), shape)
    if info.is_int:
        return np.resize(np.array([0, 10], dtype=info.numpy), shape)
    return np.resize(np.array([0.0, 1.0], dtype=info.numpy), shape)


def placeholder_example(schema: Schema) -> Arrays:
    """A two-row stand-in example for a schema known without one (ranges are then guesses)."""
    return {spec.name: _placeholder_values(spec) for spec in schema.specs}


def build_payloads(
    schema: Schema,
    example: Arrays | None,
    *,
    protocol: Protocol = "v2",
    model_name: str,
    rows: int = 1,
    count: int = 64,
    seed: int = 0,
) -> Payloads:
    """``count`` distinct request bodies of ``rows`` rows each, valid for the schema."""
    if protocol not in PROTOCOLS:
        raise UsageError(f"protocol must be one of {', '.join(PROTOCOLS)}, not '{protocol}'")
    if rows < 1:
        raise UsageError(f"rows per request must be at least 1, not {rows}")
    source = example if example is not None else placeholder_example(schema)
    samples = [sample_like(source, schema, rows, seed=seed + index) for index in range(count)]
    if protocol == "grpc":
        from quayside.loadtesting.grpc_bodies import MODEL_INFER, model_infer_body

        bodies = tuple(model_infer_body(arrays, schema, model_name=model_name) for arrays in samples)
        return Payloads(protocol, MODEL_INFER, GRPC, bodies, rows)
    render = v2_body if protocol == "v2" else invocations_body
    bodies = tuple(json.dumps(render(arrays, schema), separators=(",", ":")).encode() for arrays in samples)
    path = f"/v2/models/{model_name}/infer" if protocol == "v2" else "/invocations"
    return Payloads(protocol, path, JSON, bodies, rows)
