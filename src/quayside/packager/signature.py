"""Model signatures: named, typed, shaped inputs and outputs, and the checks that enforce them.

A :class:`Signature` holds two :class:`Schema` objects. A schema is either a
list of tensors (each with a dtype and a shape, ``-1`` marking a variable
dimension) or a table of named typed columns (each a 1-D tensor of rows).
Serving, load-test payloads, OpenAPI schemas and image labels all read this one
object, and :func:`coerce_inputs` is the one place that decides whether some
data fits it.

Data inside Quayside is always ``dict[str, numpy.ndarray]`` in schema order;
pandas is accepted at the edges but never required.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, NoReturn

import numpy as np

from quayside.errors import SignatureError

SchemaKind = Literal["tensors", "table"]
Arrays = dict[str, np.ndarray]


@dataclass(frozen=True)
class DType:
    """One row of the dtype table: a Quayside dtype and its names elsewhere."""

    name: str
    numpy: np.dtype
    onnx: str
    """The type string ONNX Runtime reports for a tensor input, e.g. ``tensor(float)``."""
    v2: str
    """The Open Inference Protocol (V2) datatype name."""
    onnx_elem_type: int
    """The ONNX ``TensorProto`` element type number, as a graph's value infos carry it."""

    @property
    def is_float(self) -> bool:
        return self.numpy.kind == "f"

    @property
    def is_int(self) -> bool:
        return self.numpy.kind in "iu"


def _row(name: str, np_dtype: Any, onnx: str, v2: str, onnx_elem_type: int) -> tuple[str, DType]:
    return name, DType(name, np.dtype(np_dtype), f"tensor({onnx})", v2, onnx_elem_type)


DTYPES: dict[str, DType] = dict(
    [
        _row("bool", np.bool_, "bool", "BOOL", 9),
        _row("int8", np.int8, "int8", "INT8", 3),
        _row("int16", np.int16, "int16", "INT16", 5),
        _row("int32", np.int32, "int32", "INT32", 6),
        _row("int64", np.int64, "int64", "INT64", 7),
        _row("uint8", np.uint8, "uint8", "UINT8", 2),
        _row("uint16", np.uint16, "uint16", "UINT16", 4),
        _row("uint32", np.uint32, "uint32", "UINT32", 12),
        _row("uint64", np.uint64, "uint64", "UINT64", 13),
        _row("float16", np.float16, "float16", "FP16", 10),
        _row("float32", np.float32, "float", "FP32", 1),
        _row("float64", np.float64, "double", "FP64", 11),
        _row("string", object, "string", "BYTES", 8),
    ]
)
"""Every dtype a signature may name, keyed by its Quayside name."""


def dtype(name: str) -> DType:
    """Look up a dtype by its Quayside name."""
    try:
        return DTYPES[name]
    except KeyError:
        raise SignatureError(f"unknown dtype '{name}' (known: {', '.join(DTYPES)})") from None


@dataclass(frozen=True)
class TensorSpec:
    """One named input or output: dtype, shape (``-1`` = variable) and whether NaN/inf may appear."""

    name: str
    dtype: str
    shape: tuple[int, ...] = (-1,)
    allow_nan: bool = False

    def __post_init__(self) -> None:
        dtype(self.dtype)
        if any(d < -1 or d == 0 for d in self.shape):
            raise SignatureError(f"'{self.name}': shape {self.shape} may hold only positive sizes and -1")

    @property
    def dtype_info(self) -> DType:
        return DTYPES[self.dtype]

    @property
    def batched(self) -> bool:
        """True when the first dimension is the (variable) row dimension."""
        return bool(self.shape) and self.shape[0] == -1

    def describe(self) -> str:
        dims = ", ".join(str(d) for d in self.shape)
        return f"{self.dtype} with shape ({dims}{',' if len(self.shape) == 1 else ''})"

    def to_dict(self, kind: SchemaKind) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "dtype": self.dtype}
        if kind == "tensors":
            out["shape"] = list(self.shape)
        if self.allow_nan:
            out["allow_nan"] = True
        return out

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], kind: SchemaKind) -> TensorSpec:
        shape = (-1,) if kind == "table" else tuple(int(d) for d in data["shape"])
        return cls(
            name=str(data["name"]),
            dtype=str(data["dtype"]),
            shape=shape,
            allow_nan=bool(data.get("allow_nan", False)),
        )


@dataclass(frozen=True)
class Schema:
    """An ordered set of tensors, or a table of columns (each column a ``(-1,)`` tensor)."""

    kind: SchemaKind
    specs: tuple[TensorSpec, ...]

    def __post_init__(self) -> None:
        if not self.specs:
            raise SignatureError("a schema needs at least one input or output")
        names = [s.name for s in self.specs]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise SignatureError(f"duplicate names in schema: {', '.join(duplicates)}")
        if self.kind == "table" and any(s.shape != (-1,) for s in self.specs):
            raise SignatureError("table columns are one value per row: shape (-1,)")

    @property
    def names(self) -> list[str]:
        return [s.name for s in self.specs]

    def __getitem__(self, name: str) -> TensorSpec:
        for spec in self.specs:
            if spec.name == name:
                return spec
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        key = "columns" if self.kind == "table" else "tensors"
        return {"type": self.kind, key: [s.to_dict(self.kind) for s in self.specs]}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Schema:
        kind = data.get("type")
        if kind not in ("tensors", "table"):
            raise SignatureError(f"schema type must be 'tensors' or 'table', got {kind!r}")
        key = "columns" if kind == "table" else "tensors"
        return cls(kind, tuple(TensorSpec.from_dict(s, kind) for s in data.get(key) or ()))


@dataclass(frozen=True)
class Signature:
    """What a model takes and what it returns."""

    inputs: Schema
    outputs: Schema

    def to_dict(self) -> dict[str, Any]:
        return {"inputs": self.inputs.to_dict(), "outputs": self.outputs.to_dict()}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Signature:
        try:
            return cls(Schema.from_dict(data["inputs"]), Schema.from_dict(data["outputs"]))
        except (KeyError, TypeError, ValueError) as e:
            raise SignatureError(f"malformed signature: {e}") from None


# --- inference -----------------------------------------------------------------------


def _is_dataframe(data: Any) -> bool:
    # Checked by name so that pandas is never imported just to ask.
    return type(data).__name__ == "DataFrame" and type(data).__module__.startswith("pandas")


def _is_series(data: Any) -> bool:
    return type(data).__name__ == "Series" and type(data).__module__.startswith("pandas")


def _column_array(series: Any) -> np.ndarray:
    """A pandas column as a plain numpy array (categoricals by their values, NA as NaN/None)."""
    values = series.astype(series.cat.categories.dtype) if series.dtype.name == "category" else series
    if values.dtype.kind in "iub" and values.dtype.name[0].isupper():
        # Nullable extension dtypes (Int64, boolean): NA becomes NaN, so ints widen to float.
        has_na = bool(values.isna().any())
        target = "float64" if has_na else values.dtype.name.lower()
        return values.to_numpy(dtype=target, na_value=np.nan if has_na else None)
    if values.dtype.name in ("string", "str"):
        return values.to_numpy(dtype=object, na_value=None)
    return values.to_numpy()


def table_columns(data: Any) -> Arrays:
    """A DataFrame's columns as ``{name: 1-D array}`` in column order."""
    return {str(name): _column_array(data[name]) for name in data.columns}


def _dtype_name(array: np.ndarray, name: str) -> tuple[str, bool]:
    """The signature dtype of an array, and whether it holds NaN/inf/None."""
    kind = array.dtype.kind
    if kind == "f":
        return array.dtype.name, bool(array.size) and not bool(np.isfinite(array).all())
    if kind in "iub":
        return array.dtype.name, False
    if kind in "US":
        return "string", False
    if kind == "O":
        missing = [v is None or (isinstance(v, float) and np.isnan(v)) for v in array.flat]
        others = {
            type(v).__name__
            for v, m in zip(array.flat, missing, strict=True)
            if not m and not isinstance(v, str)
        }
        if not others:
            return "string", any(missing)
        raise SignatureError(
            f"'{name}' holds Python objects of type {', '.join(sorted(others))}; "
            "a signature describes numbers, booleans and strings"
        )
    raise SignatureError(f"'{name}' has dtype {array.dtype}, which a signature cannot describe")


def _tensor_spec(name: str, value: Any) -> TensorSpec:
    array = np.asarray(value)
    if array.ndim == 0:
        raise SignatureError(f"'{name}' is a scalar; pass at least one row")
    dtype_name, has_nan = _dtype_name(array, name)
    return TensorSpec(name, dtype_name, (-1, *array.shape[1:]), has_nan)


def infer_schema(data: Any, default_name: str = "input") -> Schema:
    """Describe data: a DataFrame becomes a table, an array or a dict of arrays becomes tensors."""
    if _is_dataframe(data):
        columns = table_columns(data)
        specs = []
        for name, column in columns.items():
            dtype_name, has_nan = _dtype_name(column, name)
            specs.append(TensorSpec(name, dtype_name, (-1,), has_nan))
        return Schema("table", tuple(specs))
    if _is_series(data):
        return infer_schema(data.to_frame(name=str(data.name or default_name)))
    if isinstance(data, Mapping):
        if not data:
            raise SignatureError("cannot infer a schema from an empty dict")
        return Schema("tensors", tuple(_tensor_spec(str(k), v) for k, v in data.items()))
    if isinstance(data, np.ndarray | list | tuple):
        return Schema("tensors", (_tensor_spec(default_name, data),))
    raise SignatureError(
        f"cannot infer a schema from {type(data).__name__}: "
        "pass a numpy array, a pandas DataFrame, or a dict of arrays"
    )


UNNAMED_OUTPUT = "output"
"""The name :func:`infer_signature` gives outputs passed as one array: the caller named none."""


def infer_signature(inputs: Any, outputs: Any) -> Signature:
    """Build a signature from example inputs and the model's outputs for them.

    ``inputs`` and ``outputs`` may each be a numpy array, a pandas DataFrame or
    a dict of arrays. Dimensions after the first are fixed from the example; the
    first (rows) is always variable. Outputs given as one array (or an unnamed
    Series) are named :data:`UNNAMED_OUTPUT`; saving a model whose outputs have
    names of their own maps it onto the one it matches (:func:`match_outputs`).
    """
    return Signature(infer_schema(inputs, "input"), infer_schema(outputs, UNNAMED_OUTPUT))


# --- validation ----------------------------------------------------------------------


def _named_values(data: Any, schema: Schema) -> Mapping[str, Any]:
    """Split the caller's data into ``{name: values}`` following the schema's shape."""
    if _is_dataframe(data):
        if schema.kind == "tensors" and len(schema.specs) == 1:
            return {schema.specs[0].name: data.to_numpy()}
        return table_columns(data)
    if _is_series(data):
        return _named_values(data.to_frame(), schema)
    if isinstance(data, Mapping):
        return data
    if isinstance(data, np.ndarray | list | tuple):
        return _positional_values(np.asarray(data), schema)
    raise SignatureError(
        f"expected a numpy array, a pandas DataFrame or a dict of arrays, got {type(data).__name__}"
    )


def _positional_values(array: np.ndarray, schema: Schema) -> Mapping[str, Any]:
    if schema.kind == "tensors":
        if len(schema.specs) == 1:
            return {schema.specs[0].name: array}
        raise SignatureError(
            f"the model takes {len(schema.specs)} inputs ({', '.join(schema.names)}); pass a dict of arrays"
        )
    if array.ndim == 1 and len(schema.specs) == 1:
        return {schema.specs[0].name: array}
    if array.ndim != 2 or array.shape[1] != len(schema.specs):
        raise SignatureError(
            f"expected a table of {len(schema.specs)} columns ({', '.join(schema.names)}), "
            f"got an array of shape {array.shape}"
        )
    return {spec.name: array[:, i] for i, spec in enumerate(schema.specs)}


def _check_names(values: Mapping[str, Any], schema: Schema) -> None:
    what = "column" if schema.kind == "table" else "input"
    missing = [n for n in schema.names if n not in values]
    if missing:
        raise SignatureError(
            f"missing {what}{'s' if len(missing) > 1 else ''} {', '.join(repr(m) for m in missing)} "
            f"(the model takes: {', '.join(schema.names)})"
        )
    extra = [str(n) for n in values if n not in schema.names]
    if extra:
        raise SignatureError(
            f"unexpected {what}{'s' if len(extra) > 1 else ''} {', '.join(repr(e) for e in extra)} "
            f"(the model takes: {', '.join(schema.names)})"
        )


def _as_string_array(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    if array.dtype.kind in "US":
        return array.astype(object)
    if array.dtype.kind != "O":
        raise SignatureError(f"'{spec.name}': expected strings, got {array.dtype}")
    for value in array.flat:
        if isinstance(value, str):
            continue
        if value is None or (isinstance(value, float) and np.isnan(value)):
            if spec.allow_nan:
                continue
            raise SignatureError(f"'{spec.name}': missing value, which the signature does not allow")
        raise SignatureError(f"'{spec.name}': expected strings, got {type(value).__name__}")
    return array


def _from_objects(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """An object array (e.g. parsed JSON with nulls) as numbers, if every element is a number."""
    info = spec.dtype_info
    allowed = (bool, np.bool_) if info.name == "bool" else (int, float, np.number, type(None))
    if info.is_int:
        allowed = (bool, int, np.integer, np.bool_)
    for value in array.flat:
        if not isinstance(value, allowed):
            label = "null" if value is None else type(value).__name__
            raise SignatureError(f"'{spec.name}': expected {info.name}, got {label}")
    # Integers go through int64 so that the range check in _cast still applies.
    return array.astype(np.float64 if info.is_float else np.int64 if info.is_int else info.numpy)


def _check_int_range(array: np.ndarray, spec: TensorSpec) -> None:
    limits = np.iinfo(spec.dtype_info.numpy)
    if array.size and (array.min() < limits.min or array.max() > limits.max):
        raise SignatureError(f"'{spec.name}': values outside the range of {spec.dtype}")


def _cast(array: np.ndarray, spec: TensorSpec) -> np.ndarray:
    """Cast to the spec's dtype when no information is lost in kind; refuse otherwise."""
    info = spec.dtype_info
    if info.name == "string":
        return _as_string_array(array, spec)
    if array.dtype.kind == "O":
        array = _from_objects(array, spec)
    if array.dtype == info.numpy:
        return array
    source = array.dtype.kind
    if source in "USO" or source not in "biuf":
        raise SignatureError(f"'{spec.name}': expected {info.name}, got {_kind_name(array)}")
    if info.name == "bool" and source != "b":
        raise SignatureError(f"'{spec.name}': expected bool, got {array.dtype}")
    if info.is_int and source == "f":
        raise SignatureError(
            f"'{spec.name}': expected {info.name}, got {array.dtype} (floats are not cast to integers)"
        )
    if info.is_int and source in "iu":
        _check_int_range(array, spec)
    return array.astype(info.numpy)


def _kind_name(array: np.ndarray) -> str:
    return "strings" if array.dtype.kind in "USO" else str(array.dtype)


def _check_shape(array: np.ndarray, spec: TensorSpec) -> None:
    if array.ndim != len(spec.shape) or any(
        want not in (-1, got) for want, got in zip(spec.shape, array.shape, strict=True)
    ):
        raise SignatureError(f"'{spec.name}': expected {spec.describe()}, got shape {tuple(array.shape)}")


def _check_finite(array: np.ndarray, spec: TensorSpec) -> None:
    if spec.allow_nan or array.dtype.kind != "f":
        return
    finite = np.isfinite(array)
    if finite.all():
        return
    row = int(np.argwhere(~finite)[0][0])
    raise SignatureError(f"'{spec.name}': NaN or infinity at row {row}, which the signature does not allow")


def coerce_array(value: Any, spec: TensorSpec) -> np.ndarray:
    """One value checked against its spec and cast to its dtype; raises :class:`SignatureError`."""
    if _is_series(value):
        value = _column_array(value)
    try:
        array = np.asarray(value)
    except (ValueError, TypeError):
        raise SignatureError(f"'{spec.name}': ragged or non-numeric nested lists") from None
    array = _cast(array, spec)
    _check_shape(array, spec)
    _check_finite(array, spec)
    return array


def coerce_inputs(data: Any, schema: Schema, *, max_rows: int | None = None) -> Arrays:
    """Check data against a schema and return ``{name: array}`` in schema order, cast to its dtypes.

    Raises :class:`SignatureError` naming the input and the problem for missing or
    extra inputs, unsafe casts, wrong shapes, disallowed NaN/inf, inputs with
    differing row counts, or more rows than ``max_rows``.
    """
    values = _named_values(data, schema)
    _check_names(values, schema)
    arrays = {spec.name: coerce_array(values[spec.name], spec) for spec in schema.specs}
    rows = {name: a.shape[0] for name, a in arrays.items() if schema[name].batched}
    if len(set(rows.values())) > 1:
        counts = ", ".join(f"{n}={r}" for n, r in rows.items())
        raise SignatureError(f"inputs have different numbers of rows: {counts}")
    n_rows = next(iter(rows.values()), 0)
    if max_rows is not None and n_rows > max_rows:
        raise SignatureError(f"{n_rows} rows is more than the limit of {max_rows} per request")
    return arrays


# --- a model's outputs against the caller's description of them ------------------------


def match_outputs(outputs: Arrays, given: Schema) -> Schema:
    """The schema of a model's ``outputs`` (named as its flavor names them), following ``given``.

    A given output that the model produces by name must fit it, by the rules inputs follow.
    A single given output named :data:`UNNAMED_OUTPUT` that the model does not produce
    (``infer_signature(X, model.predict(X))`` writes one) describes the one model output it
    matches by dtype and shape, and takes that output's name and dtype; integers of any
    width match each other, because a label's width may change as a model is saved and
    loaded. Outputs the caller did not describe are described from their values, as when
    no signature is given. The outputs come back in the model's order, which is also the
    order of the outputs of its converted ONNX graph.

    Raises :class:`SignatureError` naming the output and the problem, and listing every
    output the model produces (name, dtype, shape).
    """
    unknown = [spec for spec in given.specs if spec.name not in outputs]
    fitted: dict[str, TensorSpec] = {}
    if len(given.specs) == 1 and unknown and unknown[0].name == UNNAMED_OUTPUT:
        mapped = _matching_output(outputs, unknown[0])
        fitted[mapped.name] = mapped
    elif unknown:
        plural = "s" if len(unknown) > 1 else ""
        names = ", ".join(repr(spec.name) for spec in unknown)
        _refuse_outputs(f"the model produces no output{plural} named {names}", outputs)
    for spec in given.specs:
        if spec.name in outputs:
            fitted[spec.name] = _fitted_output(outputs[spec.name], spec, outputs)
    specs = tuple(fitted.get(name) or _tensor_spec(name, value) for name, value in outputs.items())
    # Outputs described from their values are tensors; a given table stays one only if it is complete.
    kind = given.kind if len(fitted) == len(outputs) else "tensors"
    return Schema(kind, specs)


def _fitted_output(value: Any, spec: TensorSpec, outputs: Arrays) -> TensorSpec:
    try:
        coerce_array(value, spec)
    except SignatureError as e:
        _refuse_outputs(f"output {e.message}", outputs)
    return spec


def _matching_output(outputs: Arrays, given: TensorSpec) -> TensorSpec:
    candidates = [c for c in (_as_described(name, value, given) for name, value in outputs.items()) if c]
    if len(candidates) == 1:
        return candidates[0]
    described = f"output '{given.name}' ({given.describe()})"
    if not candidates:
        _refuse_outputs(f"{described} matches none of the model's outputs by dtype and shape", outputs)
    names = ", ".join(c.name for c in candidates)
    _refuse_outputs(f"{described} matches more than one of the model's outputs ({names})", outputs)


def _as_described(name: str, value: Any, given: TensorSpec) -> TensorSpec | None:
    """The model's output ``name`` as ``given`` describes it, or None if it does not fit."""
    array = np.asarray(value)
    try:
        dtype_name, _ = _dtype_name(array, name)
    except SignatureError:
        return None
    info = DTYPES.get(dtype_name)
    if info is None or (dtype_name != given.dtype and not (info.is_int and given.dtype_info.is_int)):
        return None
    candidate = TensorSpec(name, dtype_name, given.shape, given.allow_nan)
    try:
        coerce_array(array, candidate)
    except SignatureError:
        return None
    return candidate


def _refuse_outputs(problem: str, outputs: Arrays) -> NoReturn:
    raise SignatureError(f"{problem}; the model produces {_describe_outputs(outputs)}")


def _describe_outputs(outputs: Arrays) -> str:
    """Outputs as a message lists them: ``label (int64 with shape (-1,)), ...``."""
    described = []
    for name, value in outputs.items():
        try:
            described.append(f"{name} ({_tensor_spec(name, value).describe()})")
        except SignatureError:
            described.append(f"{name} ({np.asarray(value).dtype})")
    return ", ".join(described)


def row_count(arrays: Arrays) -> int:
    """Rows in a batch of arrays (the first dimension of the first array)."""
    first = next(iter(arrays.values()))
    return int(first.shape[0]) if first.ndim else 1
