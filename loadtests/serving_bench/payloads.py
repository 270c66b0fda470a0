"""Request bodies in each server's protocol, and the labels read back from each server's answer.

Numbers are written as the shortest decimal that reads back as the same
float32, as a client holding float32 features would send them, so every server
receives bit-identical inputs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

BodyFormat = Callable[[np.ndarray], str]


def _number(value: np.float32) -> str:
    return str(value)  # NumPy 2: the shortest repr that round-trips as float32


def _row(row: np.ndarray) -> str:
    return "[" + ",".join(_number(v) for v in row) + "]"


def rows_json(rows: np.ndarray) -> str:
    """``[[f, f, ...], ...]`` for a 2-D float32 array."""
    return "[" + ",".join(_row(r) for r in rows) + "]"


def v2_body(input_name: str) -> BodyFormat:
    """Open Inference Protocol V2: one FP32 tensor, data flattened row-major."""

    def body(rows: np.ndarray) -> str:
        flat = ",".join(_number(v) for v in rows.reshape(-1))
        shape = f"[{rows.shape[0]},{rows.shape[1]}]"
        return f'{{"inputs":[{{"name":"{input_name}","datatype":"FP32","shape":{shape},"data":[{flat}]}}]}}'

    return body


def inputs_body(rows: np.ndarray) -> str:
    """MLflow's ``/invocations`` tensor form: ``{"inputs": [[...], ...]}``."""
    return '{"inputs":' + rows_json(rows) + "}"


def rows_body(rows: np.ndarray) -> str:
    """The hand-written and BentoML endpoints' own form: ``{"rows": [[...], ...]}``."""
    return '{"rows":' + rows_json(rows) + "}"


def bodies(rows: np.ndarray, rows_per_request: int, count: int, body: BodyFormat) -> list[str]:
    """``count`` distinct bodies of ``rows_per_request`` consecutive rows each (wrapping around)."""
    result = []
    for i in range(count):
        start = (i * rows_per_request) % (len(rows) - rows_per_request + 1)
        result.append(body(rows[start : start + rows_per_request]))
    return result


def find_output(answer: Any, name: str) -> list[Any] | None:
    """Output ``name``'s values in any of the servers' answer shapes, or None if it is not there.

    V2 ``{"outputs": [{"name": ..., "data": [...]}, ...]}``; MLflow
    ``{"predictions": ...}`` (a list of values, of per-row records, or a dict
    of columns); the baselines' ``{"<name>": [...], ...}``. A lone unnamed list
    is taken to be the output asked for.
    """
    if isinstance(answer, dict) and isinstance(answer.get("outputs"), list):
        for output in answer["outputs"]:
            if isinstance(output, dict) and output.get("name") == name:
                return _list(output.get("data"))
        return None
    if isinstance(answer, dict) and "predictions" in answer:
        return find_output(answer["predictions"], name)
    if isinstance(answer, dict):
        return _list(answer.get(name))
    if isinstance(answer, list) and answer and isinstance(answer[0], dict):
        return [record.get(name) for record in answer]
    return _list(answer)


def _list(values: Any) -> list[Any] | None:
    return values if isinstance(values, list) else None


def compare(answer: Any, name: str, reference: np.ndarray, exact: bool) -> str | None:
    """None if output ``name`` in ``answer`` matches ``reference``, else what differs."""
    values = find_output(answer, name)
    if values is None:
        return f"no output '{name}' in the answer"
    try:
        array = np.asarray(values, dtype=reference.dtype).reshape(reference.shape)
    except (TypeError, ValueError):
        return f"output '{name}' does not have the shape {reference.shape} of numbers"
    if exact:
        wrong = int(np.sum(array != reference))
        return (
            f"{wrong} of {reference.size} values of '{name}' differ from the native model's"
            if wrong
            else None
        )
    if not np.allclose(array, reference, rtol=1e-4, atol=1e-5):
        return f"'{name}' differs from ONNX Runtime's by up to {np.max(np.abs(array - reference)):.3g}"
    return None
