"""Input examples: stored in the manifest as plain lists, and sampled from to make new valid rows.

The parity check and load-test payloads both need "more rows like the
example": :func:`sample_like` draws them within the example's per-column ranges
(numbers uniformly between the observed minimum and maximum, integers as
integers, booleans and strings from the observed values).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from quayside.errors import PackageError
from quayside.packager.signature import Arrays, Schema, TensorSpec, coerce_inputs, row_count


def encode_example(example: Arrays) -> dict[str, list[Any]]:
    """An example as ``{name: nested lists}``, safe for YAML and JSON."""
    return {name: array.tolist() for name, array in example.items()}


def decode_example(data: Mapping[str, Any], schema: Schema) -> Arrays:
    """The stored example back as arrays of the schema's dtypes."""
    try:
        return coerce_inputs(dict(data), schema)
    except Exception as e:
        raise PackageError(f"the package's input example does not fit its signature: {e}") from None


def _sample_numbers(values: np.ndarray, spec: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    finite = np.where(np.isfinite(values), values, np.nan) if spec.dtype_info.is_float else values
    low = np.nanmin(finite, axis=0)
    high = np.nanmax(finite, axis=0)
    low = np.where(np.isnan(low), 0, low) if spec.dtype_info.is_float else low
    high = np.where(np.isnan(high), 0, high) if spec.dtype_info.is_float else high
    shape = (n, *values.shape[1:])
    if spec.dtype_info.is_int:
        return rng.integers(low, high, size=shape, endpoint=True).astype(spec.dtype_info.numpy)
    return rng.uniform(low, high, size=shape).astype(spec.dtype_info.numpy)


def _sample_choices(values: np.ndarray, spec: TensorSpec, n: int, rng: np.random.Generator) -> np.ndarray:
    pool = [v for v in values.ravel().tolist() if v is not None]
    if not pool:
        return np.full((n, *values.shape[1:]), None, dtype=object)
    picks = rng.choice(np.asarray(pool, dtype=spec.dtype_info.numpy), size=(n, *values.shape[1:]))
    return picks.astype(spec.dtype_info.numpy)


def sample_like(example: Arrays, schema: Schema, n: int, *, seed: int = 0) -> Arrays:
    """``n`` new rows within the ranges the example spans, one array per input.

    Inputs without a variable row dimension cannot grow; then the example
    itself is returned.
    """
    if n <= 0 or not all(spec.batched for spec in schema.specs) or row_count(example) == 0:
        return dict(example)
    rng = np.random.default_rng(seed)
    samples: Arrays = {}
    for spec in schema.specs:
        values = example[spec.name]
        if spec.dtype_info.is_float or spec.dtype_info.is_int:
            samples[spec.name] = _sample_numbers(values, spec, n, rng)
        else:
            samples[spec.name] = _sample_choices(values, spec, n, rng)
    return samples


def concat_rows(first: Arrays, second: Arrays) -> Arrays:
    """Two batches of the same inputs, one after the other."""
    return {name: np.concatenate([first[name], second[name]]) for name in first}
