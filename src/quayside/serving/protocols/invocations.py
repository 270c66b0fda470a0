"""MLflow's ``/invocations`` protocol: four JSON layouts and CSV in, ``{"predictions": ...}`` out.

JSON bodies hold exactly one of ``dataframe_split`` (``columns`` + ``data``
rows), ``dataframe_records`` (a list of ``{column: value}``), ``instances`` (a
list of rows, or of ``{input: value}``) or ``inputs`` (an array for a single
input, or ``{input: values}``). CSV bodies start with a header row of column
names. Rows are turned into columns here, so a table with mixed types never
passes through one mixed-type array.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from typing import Any

import numpy as np

from quayside.errors import MalformedInputError, SignatureError, UnsupportedMediaTypeError, UsageError
from quayside.packager.signature import Arrays, Schema, TensorSpec, coerce_inputs, row_count
from quayside.serving.protocols.codec import dumps, jsonable, loads

LAYOUTS = ("dataframe_split", "dataframe_records", "instances", "inputs")
Data = Mapping[str, Any] | list[Any]


def _columns_from_rows(rows: list[Any], columns: list[str], where: str) -> dict[str, list[Any]]:
    for index, row in enumerate(rows):
        if not isinstance(row, list) or len(row) != len(columns):
            raise UsageError(f"{where}: row {index} does not have {len(columns)} values (one per column)")
    return {name: [row[i] for row in rows] for i, name in enumerate(columns)}


def _columns_from_records(records: list[Any], where: str) -> dict[str, list[Any]]:
    names: dict[str, None] = {}
    for index, record in enumerate(records):
        if not isinstance(record, dict):
            raise UsageError(f"{where}: item {index} is not an object of column values")
        names.update(dict.fromkeys(record))
    # A key missing from some records becomes null there: the signature check then names it.
    return {name: [record.get(name) for record in records] for name in names}


def _single_input(values: Any, schema: Schema, where: str) -> Data:
    """Positional data: the one tensor input, or rows of a table."""
    if schema.kind == "table":
        if not isinstance(values, list):
            raise UsageError(f"{where}: expected a list of rows")
        if values and all(isinstance(v, list) for v in values):
            return _columns_from_rows(values, schema.names, where)
        if len(schema.specs) == 1:
            return {schema.specs[0].name: values}
        raise UsageError(f"{where}: expected rows of {len(schema.specs)} values ({', '.join(schema.names)})")
    if len(schema.specs) != 1:
        raise SignatureError(
            f"the model takes {len(schema.specs)} inputs ({', '.join(schema.names)}); "
            f'send {{"inputs": {{name: values}}}} or "instances" of objects'
        )
    return {schema.specs[0].name: values}


def _dataframe_split(value: Any, schema: Schema) -> Data:
    where = "dataframe_split"
    if not isinstance(value, dict) or not isinstance(value.get("data"), list):
        raise UsageError(f'{where} must be {{"columns": [...], "data": [[...], ...]}}')
    rows, columns = value["data"], value.get("columns")
    if schema.kind == "tensors":
        return _single_input(rows, schema, where)
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise UsageError(f"{where}: 'columns' must list the column names ({', '.join(schema.names)})")
    return _columns_from_rows(rows, columns, where)


def _dataframe_records(value: Any, schema: Schema) -> Data:
    where = "dataframe_records"
    if not isinstance(value, list):
        raise UsageError(f"{where} must be a list of {{column: value}} objects")
    columns = _columns_from_records(value, where)
    if schema.kind == "tensors" and len(schema.specs) == 1 and schema.names[0] not in columns:
        return {schema.names[0]: [list(record.values()) for record in value]}
    return columns


def _instances(value: Any, schema: Schema) -> Data:
    where = "instances"
    if not isinstance(value, list):
        raise UsageError(f"{where} must be a list")
    if value and all(isinstance(v, dict) for v in value):
        return _columns_from_records(value, where)
    return _single_input(value, schema, where)


def _inputs(value: Any, schema: Schema) -> Data:
    if isinstance(value, dict):
        return value
    return _single_input(value, schema, "inputs")


_PARSERS = {
    "dataframe_split": _dataframe_split,
    "dataframe_records": _dataframe_records,
    "instances": _instances,
    "inputs": _inputs,
}


def parse_json(body: bytes, schema: Schema) -> tuple[Arrays, int]:
    """Parse and check an ``application/json`` invocation body; returns the inputs and their row count."""
    document = loads(body)
    if not isinstance(document, dict):
        raise UsageError(f"expected a JSON object with one of: {', '.join(LAYOUTS)}")
    keys = [key for key in LAYOUTS if key in document]
    unknown = [key for key in document if key not in LAYOUTS and key != "params"]
    if len(keys) != 1 or unknown:
        got = ", ".join(document) or "nothing"
        raise UsageError(f"expected exactly one of {', '.join(LAYOUTS)}; got {got}")
    if document.get("params"):
        raise UsageError("this model takes no inference params; remove 'params'")
    data = _PARSERS[keys[0]](document[keys[0]], schema)
    inputs = coerce_inputs(data, schema)
    return inputs, row_count(inputs)


# --- CSV ---------------------------------------------------------------------------------

_TRUE, _FALSE = {"true", "1", "yes"}, {"false", "0", "no"}


def _parse_cell(text: str, spec: TensorSpec, row: int) -> Any:
    info = spec.dtype_info
    if info.name == "string":
        return text
    cell = text.strip()
    try:
        if info.is_float:
            return float(cell) if cell else float("nan")
        if info.is_int:
            return int(cell)
        if info.name == "bool" and cell.lower() in _TRUE | _FALSE:
            return cell.lower() in _TRUE
    except ValueError:
        pass
    raise SignatureError(f"'{spec.name}': row {row} holds '{text}', which is not {info.name}")


def parse_csv(body: bytes, schema: Schema) -> tuple[Arrays, int]:
    """Parse and check a ``text/csv`` body: a header row of column names, then one row per record."""
    try:
        text = body.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise MalformedInputError("the CSV body is not UTF-8 text") from None
    try:
        rows = list(csv.reader(io.StringIO(text), strict=True))
    except csv.Error as e:
        raise MalformedInputError(f"the CSV body cannot be parsed: {e}") from None
    rows = [row for row in rows if row]
    if not rows:
        raise MalformedInputError("the CSV body is empty; send a header row and data rows")
    header, records = rows[0], rows[1:]
    if not records:
        raise MalformedInputError("the CSV body has a header row and no data rows; send at least one row")
    for index, record in enumerate(records, start=1):
        if len(record) != len(header):
            raise MalformedInputError(
                f"CSV row {index} has {len(record)} fields; the header has {len(header)}"
            )
    if schema.kind == "tensors":
        spec = schema.specs[0] if len(schema.specs) == 1 else None
        if spec is None:
            raise SignatureError(f"the model takes {len(schema.specs)} inputs; CSV can carry only one")
        matrix = [[_parse_cell(cell, spec, i) for cell in record] for i, record in enumerate(records, 1)]
        data: Data = {spec.name: np.array(matrix, dtype=spec.dtype_info.numpy).reshape(len(records), -1)}
    else:
        known = {spec.name: spec for spec in schema.specs}
        data = {
            name: [_parse_cell(r[i], known[name], n) for n, r in enumerate(records, 1)]
            if name in known
            else []
            for i, name in enumerate(header)
        }
    inputs = coerce_inputs(data, schema)
    return inputs, row_count(inputs)


def parse_body(body: bytes, content_type: str, schema: Schema) -> tuple[Arrays, int]:
    """Parse an invocation body by its content type (JSON when none is given)."""
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type in ("", "application/json"):
        return parse_json(body, schema)
    if media_type == "text/csv":
        return parse_csv(body, schema)
    raise UnsupportedMediaTypeError(
        f"content type '{media_type}' is not supported; send application/json or text/csv"
    )


def render_predictions(outputs: Arrays) -> bytes:
    """``{"predictions": [...]}`` for one output, ``{"predictions": {name: [...]}}`` for several."""
    if len(outputs) == 1:
        (array,) = outputs.values()
        return dumps({"predictions": jsonable(array)})
    return dumps({"predictions": {name: jsonable(array) for name, array in outputs.items()}})
