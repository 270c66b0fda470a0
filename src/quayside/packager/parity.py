"""Parity: does the ONNX model answer like the native one?

Both run on the same rows (the input example plus rows sampled within its
ranges); each output is compared. Float outputs must agree within
``atol + rtol * |native|`` elementwise (numpy's ``allclose`` rule); labels and
other non-float outputs must be equal, and their agreement rate is recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from quayside.packager.signature import Arrays, Schema

DEFAULT_RTOL = 1e-4
DEFAULT_ATOL = 1e-5
DEFAULT_SAMPLES = 1000


@dataclass(frozen=True)
class Tolerance:
    """How close a runtime must stay to the native model, and on how many sampled rows parity is measured."""

    rtol: float = DEFAULT_RTOL
    atol: float = DEFAULT_ATOL
    samples: int = DEFAULT_SAMPLES
    seed: int = 0


DEFAULT_TOLERANCE = Tolerance()
"""The tolerance a package is checked with unless it says otherwise."""


@dataclass(frozen=True)
class OutputParity:
    """How one output of the ONNX model compares with the native model's."""

    name: str
    max_abs_diff: float | None = None
    max_rel_diff: float | None = None
    label_agreement: float | None = None
    passed: bool = True
    shape_mismatch: str | None = None

    def to_dict(self) -> dict[str, Any]:
        fields = {
            "max_abs_diff": self.max_abs_diff,
            "max_rel_diff": self.max_rel_diff,
            "label_agreement": self.label_agreement,
        }
        return {k: v for k, v in fields.items() if v is not None} | {"passed": self.passed}

    def problem(self, rtol: float, atol: float) -> str:
        if self.shape_mismatch is not None:
            return f"output '{self.name}': {self.shape_mismatch}"
        if self.label_agreement is not None:
            return f"output '{self.name}': labels agree on {self.label_agreement:.4%} of rows, not all"
        return (
            f"output '{self.name}': max abs diff {self.max_abs_diff:.3g}, max rel diff "
            f"{self.max_rel_diff:.3g} exceed the tolerance (rtol={rtol:g}, atol={atol:g})"
        )


@dataclass(frozen=True)
class ParityReport:
    """Parity over every output, and the settings it was measured with."""

    rows: int
    rtol: float
    atol: float
    outputs: tuple[OutputParity, ...]

    @property
    def passed(self) -> bool:
        return all(o.passed for o in self.outputs)

    def failures(self) -> list[str]:
        return [o.problem(self.rtol, self.atol) for o in self.outputs if not o.passed]

    def to_dict(self) -> dict[str, Any]:
        return {
            "rows": self.rows,
            "rtol": self.rtol,
            "atol": self.atol,
            "passed": self.passed,
            "outputs": {o.name: o.to_dict() for o in self.outputs},
        }


def compare_output(name: str, native: np.ndarray, onnx: np.ndarray, rtol: float, atol: float) -> OutputParity:
    """Compare one output; shapes must match after the runner has conformed them."""
    if native.shape != onnx.shape:
        mismatch = f"native shape {native.shape}, ONNX shape {onnx.shape}"
        return OutputParity(name, passed=False, shape_mismatch=mismatch)
    if native.dtype.kind != "f":
        rows_equal = (native == onnx).reshape(len(native), -1).all(axis=1) if native.size else np.array([])
        agreement = float(rows_equal.mean()) if rows_equal.size else 1.0
        return OutputParity(name, label_agreement=agreement, passed=agreement == 1.0)
    native64, onnx64 = native.astype(np.float64), onnx.astype(np.float64)
    both_nan = np.isnan(native64) & np.isnan(onnx64)
    diff = np.where(both_nan, 0.0, np.abs(native64 - onnx64))
    scale = np.abs(native64)
    rel = np.divide(diff, scale, out=np.where(diff > 0, np.inf, 0.0), where=scale > 0)
    within = diff <= atol + rtol * scale
    return OutputParity(
        name,
        max_abs_diff=float(np.nanmax(diff)) if diff.size else 0.0,
        max_rel_diff=float(np.nanmax(rel)) if rel.size else 0.0,
        passed=bool(within.all()),
    )


def measure_parity(
    native: Callable[[Arrays], Arrays],
    onnx: Callable[[Arrays], Arrays],
    rows: Arrays,
    outputs: Schema,
    *,
    rtol: float = DEFAULT_RTOL,
    atol: float = DEFAULT_ATOL,
) -> ParityReport:
    """Run both models on ``rows`` and compare every output the signature names."""
    expected, actual = native(rows), onnx(rows)
    first = next(iter(rows.values()))
    return ParityReport(
        rows=int(first.shape[0]),
        rtol=rtol,
        atol=atol,
        outputs=tuple(
            compare_output(name, np.asarray(expected[name]), np.asarray(actual[name]), rtol, atol)
            for name in outputs.names
        ),
    )
