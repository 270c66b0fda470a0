"""Request bodies of the two inference protocols for given arrays, and their answers read back as arrays.

The load generator sends these bodies (:mod:`quayside.loadtesting.payloads`), and the
smoke test of a built image sends its input example with them and compares what
comes back with the golden outputs (:mod:`quayside.packager.docker.smoke`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quayside.errors import MalformedInputError
from quayside.packager.signature import Arrays, Schema


def v2_body(arrays: Arrays, schema: Schema) -> dict[str, Any]:
    """A V2 inference request: each input flat, row-major, with its V2 datatype and shape."""
    return {
        "inputs": [
            {
                "name": spec.name,
                "datatype": spec.dtype_info.v2,
                "shape": list(arrays[spec.name].shape),
                "data": arrays[spec.name].ravel().tolist(),
            }
            for spec in schema.specs
        ]
    }


def invocations_body(arrays: Arrays, schema: Schema) -> dict[str, Any]:
    """An ``/invocations`` request: ``dataframe_split`` rows for a table, ``inputs`` for tensors."""
    if schema.kind == "table":
        columns = [arrays[name].tolist() for name in schema.names]
        return {
            "dataframe_split": {
                "columns": schema.names,
                "data": [list(row) for row in zip(*columns, strict=True)],
            }
        }
    if len(schema.specs) == 1:
        return {"inputs": arrays[schema.names[0]].tolist()}
    return {"inputs": {name: arrays[name].tolist() for name in schema.names}}


def v2_outputs(document: Any) -> Arrays:
    """The outputs of a V2 inference response, each reshaped to its shape."""
    if not isinstance(document, Mapping) or not isinstance(document.get("outputs"), list):
        raise MalformedInputError("the V2 response has no 'outputs' list")
    arrays: Arrays = {}
    for tensor in document["outputs"]:
        try:
            arrays[str(tensor["name"])] = np.asarray(tensor["data"]).reshape(tensor["shape"])
        except (KeyError, TypeError, ValueError) as e:
            raise MalformedInputError(f"the V2 response holds a malformed output ({e})") from None
    return arrays


def invocations_outputs(document: Any, outputs: Schema) -> Arrays:
    """The outputs of an ``/invocations`` answer: ``predictions`` by name, or the one output's values."""
    if not isinstance(document, Mapping) or "predictions" not in document:
        raise MalformedInputError("the /invocations response has no 'predictions'")
    predictions = document["predictions"]
    if isinstance(predictions, Mapping):
        return {str(name): np.asarray(values) for name, values in predictions.items()}
    return {outputs.names[0]: np.asarray(predictions)}
