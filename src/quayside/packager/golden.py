"""Golden outputs: what the model answered for its input example when it was saved.

Saving runs the saved model (loaded back as a user would load it) on the input
example and records its outputs in the manifest, so that any later runtime (the
built image, ONNX Runtime, the native flavor in another environment) can be
checked against them with :func:`check_outputs`: labels, integers, strings and
booleans must be equal, floats within the package's parity tolerance.

Each output is stored as its dtype (a signature dtype name), its shape and its
values as the plain nested lists the input example is stored as; the dtype and
shape make the record exact on its own, whatever the signature's variable
dimensions or a given signature's wider dtypes say. Outputs too large for a
manifest, or a package without an input example, record instead why there are
none.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from quayside.errors import PackageError, SignatureError
from quayside.packager.parity import DEFAULT_TOLERANCE, Tolerance
from quayside.packager.signature import DTYPES, Arrays, DType, infer_schema

GOLDEN_MAX_BYTES = 1 << 20
"""The most the golden outputs may take as JSON; larger ones are not recorded, and the manifest says why."""

NO_EXAMPLE = (
    "the package has no input example to record the model's answers for; "
    "save it with input_example= to record them"
)
NOT_RECORDED = (
    "the manifest records no golden outputs (the package was written by a Quayside that did not record "
    "them, or without running the model)"
)


@dataclass(frozen=True)
class GoldenOutputs:
    """The model's outputs for its input example, as stored in the manifest, or why there are none."""

    outputs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    """Each output by name: ``{"dtype": ..., "shape": [...], "data": nested lists}``."""
    missing: str | None = None
    """Why no outputs are recorded, when none are."""

    def arrays(self) -> Arrays:
        """The recorded outputs as arrays of their recorded dtypes and shapes (empty when there are none)."""
        return {name: decode_array(name, data) for name, data in self.outputs.items()}

    def to_dict(self) -> dict[str, Any]:
        if self.missing is not None:
            return {"missing": self.missing}
        return {"outputs": {name: dict(data) for name, data in self.outputs.items()}}

    @classmethod
    def from_dict(cls, data: Any) -> GoldenOutputs:
        if not isinstance(data, Mapping):
            raise PackageError("the manifest's golden_outputs is not a mapping")
        if data.get("missing") is not None:
            return cls(missing=str(data["missing"]))
        outputs = data.get("outputs")
        if not isinstance(outputs, Mapping) or not all(isinstance(v, Mapping) for v in outputs.values()):
            raise PackageError("the manifest's golden_outputs holds neither outputs nor why they are missing")
        return cls(outputs={str(name): value for name, value in outputs.items()})


def no_golden(reason: str) -> GoldenOutputs:
    """Golden outputs that are not recorded, and why."""
    return GoldenOutputs(missing=reason)


def record_golden(
    outputs: Mapping[str, Any], names: Iterable[str], *, max_bytes: int = GOLDEN_MAX_BYTES
) -> GoldenOutputs:
    """Record the outputs ``names`` (the signature's, in its order) of a model's answer to its example."""
    try:
        encoded = {name: encode_array(name, np.asarray(outputs[name])) for name in names}
    except SignatureError as e:
        return no_golden(f"the model's outputs cannot be recorded: {e.message}")
    size = len(json.dumps(encoded, separators=(",", ":")))
    if size > max_bytes:
        return no_golden(
            f"the model's outputs for the input example take {size:,} bytes, more than the {max_bytes:,} "
            "a manifest keeps; save it with a smaller input_example= to record them"
        )
    return GoldenOutputs(outputs=encoded)


# --- one array in the manifest -------------------------------------------------------------


def _plain_string(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return value.decode() if isinstance(value, bytes) else str(value)


def encode_array(name: str, array: np.ndarray) -> dict[str, Any]:
    """One array as its dtype name, shape and values as nested lists (YAML- and JSON-safe)."""
    dtype_name = infer_schema({name: array}).specs[0].dtype
    # np.str_ and bytes are not plain YAML: every string element becomes a str (or None).
    plain = np.frompyfunc(_plain_string, 1, 1)(array) if dtype_name == "string" else array
    data = plain.tolist()
    return {"dtype": dtype_name, "shape": list(array.shape), "data": data}


def _malformed(name: str, problem: str) -> PackageError:
    return PackageError(f"the manifest's golden output '{name}' is malformed: {problem}")


def _values(name: str, data: Mapping[str, Any]) -> tuple[np.ndarray, DType, tuple[int, ...]]:
    try:
        info = DTYPES[str(data["dtype"])]
        shape = tuple(int(d) for d in data["shape"])
        values = data["data"]
    except (KeyError, TypeError, ValueError) as e:
        raise _malformed(name, f"missing or invalid field {e}") from None
    try:
        raw = np.asarray(values, dtype=object)
    except (ValueError, TypeError):
        raise _malformed(name, "its values are ragged nested lists") from None
    return raw, info, shape


def decode_array(name: str, data: Mapping[str, Any]) -> np.ndarray:
    """An array stored by :func:`encode_array`, of exactly its dtype and shape."""
    raw, info, shape = _values(name, data)
    # The Python types YAML reads each dtype's values back as (bool is an int to Python: refused).
    allowed = (
        (bool,)
        if info.name == "bool"
        else (int,)
        if info.is_int
        else (int, float)
        if info.is_float
        else (str, type(None))
    )
    if not all(isinstance(v, allowed) and (info.name == "bool" or not isinstance(v, bool)) for v in raw.flat):
        raise _malformed(name, f"its values are not {info.name}")
    if raw.shape != shape and not (raw.size == 0 and math.prod(shape) == 0):
        raise _malformed(name, f"its values have shape {raw.shape}, not the recorded {shape}")
    try:
        return raw.reshape(shape).astype(info.numpy)
    except (ValueError, TypeError, OverflowError):
        raise _malformed(name, f"its values do not fit {info.name}") from None


# --- comparing a runtime's answer with them ------------------------------------------------


@dataclass(frozen=True)
class OutputDifference:
    """How one output of an answer differs from its golden output; ``str()`` says it in a line."""

    output: str
    expected: str
    got: str
    row: int | None = None
    """The first row that differs (None when the output as a whole does: missing, another shape)."""
    note: str = ""

    def __str__(self) -> str:
        where = f"output '{self.output}'" + (f", row {self.row}" if self.row is not None else "")
        return f"{where}: expected {self.expected}, got {self.got}" + (f" ({self.note})" if self.note else "")


def _show(value: Any) -> str:
    return np.array2string(
        np.asarray(value), precision=8, threshold=12, edgeitems=3, separator=", ", max_line_width=10**6
    )


def _as_floats(array: np.ndarray) -> np.ndarray | None:
    if array.dtype.kind in "iuf":
        return array.astype(np.float64)
    if array.dtype.kind != "O":
        return None
    try:
        # JSON has no NaN: some servers answer null for it.
        return array.astype(np.float64)
    except (ValueError, TypeError):
        return None


# What an answer may hold for an exact output: numbers for integers (JSON may write 1.0), only
# booleans for booleans, and strings (None for a missing one) for strings.
COMPARABLE_KINDS = {"i": "iufO", "u": "iufO", "b": "bO", "O": "USO", "U": "USO", "S": "USO"}


def _kind_name(array: np.ndarray) -> str:
    return "strings" if array.dtype.kind in "USO" else f"{array.dtype} values"


def _float_matches(want: np.ndarray, got: np.ndarray, tolerance: Tolerance) -> tuple[np.ndarray, np.ndarray]:
    """Elementwise: within ``atol + rtol * |expected|`` (NaN matches NaN, inf the same inf); and the gap."""
    want64 = want.astype(np.float64)
    equal = (want64 == got) | (np.isnan(want64) & np.isnan(got))
    with np.errstate(invalid="ignore"):
        gap = np.where(equal, 0.0, np.abs(want64 - got))
        close = gap <= tolerance.atol + tolerance.rtol * np.abs(want64)
    return equal | close, gap


def _compare(name: str, want: np.ndarray, got: np.ndarray, tolerance: Tolerance) -> OutputDifference | None:
    if got.shape != want.shape:
        return OutputDifference(name, f"shape {want.shape}", f"shape {got.shape}")
    if want.size == 0:
        return None
    gap = None
    if want.dtype.kind == "f":
        floats = _as_floats(got)
        if floats is None:
            return OutputDifference(name, f"{want.dtype} values", _kind_name(got))
        matches, gap = _float_matches(want, floats, tolerance)
    elif got.dtype.kind not in COMPARABLE_KINDS.get(want.dtype.kind, want.dtype.kind):
        wanted = "strings" if want.dtype.kind in "USO" else f"{want.dtype} values"
        return OutputDifference(name, wanted, _kind_name(got))
    else:
        matches = _object_equal(want, got)
    rows = matches.reshape(want.shape[0], -1).all(axis=1) if want.ndim else matches.reshape(1)
    if rows.all():
        return None
    first = int(np.argmin(rows))
    note = f"{int((~rows).sum())} of {rows.size} rows differ"
    if gap is not None:
        row_gap = float(np.max(gap[first])) if want.ndim else float(gap)
        note += (
            f"; max abs diff {row_gap:.3g} in that row, tolerance "
            f"atol={tolerance.atol:g} + rtol={tolerance.rtol:g} x |expected|"
        )
    expected, actual = (want[first], got[first]) if want.ndim else (want, got)
    return OutputDifference(name, _show(expected), _show(actual), row=first, note=note)


def _object_equal(want: np.ndarray, got: np.ndarray) -> np.ndarray:
    # Element by element in Python: no numpy loop compares every pair of kinds (int64 with object).
    flat = [bool(w == g) for w, g in zip(want.ravel().tolist(), got.ravel().tolist(), strict=True)]
    return np.asarray(flat, dtype=bool).reshape(want.shape)


def check_outputs(
    expected: Mapping[str, np.ndarray], actual: Mapping[str, Any], tolerance: Tolerance = DEFAULT_TOLERANCE
) -> list[OutputDifference]:
    """How ``actual`` (a runtime's answer to the input example) differs from the ``expected`` golden outputs.

    Every expected output must be in the answer with the same shape; labels,
    integers, strings and booleans must be equal, floats within
    ``tolerance.atol + tolerance.rtol * |expected|`` (a package's own tolerance is
    :meth:`~quayside.packager.manifest.Manifest.parity_tolerance`). Outputs the
    answer holds beyond the expected ones are not compared. An empty list means
    the answer matches; with nothing expected there is nothing to compare, so a
    caller checks ``Manifest.golden_missing`` first.
    """
    differences = []
    for name, want in expected.items():
        want = np.asarray(want)
        if name not in actual:
            answered = f"the answer has {', '.join(actual)}" if actual else "the answer is empty"
            described = f"{want.dtype} with shape {want.shape}"
            differences.append(OutputDifference(name, described, f"no such output ({answered})"))
            continue
        try:
            got = np.asarray(actual[name])
        except (ValueError, TypeError):
            differences.append(OutputDifference(name, f"shape {want.shape}", "ragged nested lists"))
            continue
        difference = _compare(name, want, got, tolerance)
        if difference is not None:
            differences.append(difference)
    return differences
