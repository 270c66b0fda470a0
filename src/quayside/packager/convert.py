"""ONNX conversion: dispatch to the flavor's converter, align the graph with the signature, measure parity.

A conversion is kept only if the ONNX model answers like the native model (parity,
on the example plus sampled rows) and, on the example, like the package's golden
outputs (what the model answered when it was saved).

A converted graph takes the signature's input names and answers with the
signature's output names, in order, so that a server running it on ONNX
Runtime alone speaks the same signature as the native model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quayside.errors import ConversionError, ParityError
from quayside.packager.example import concat_rows, sample_like
from quayside.packager.flavors.base import Flavor, Options, import_extra
from quayside.packager.flavors.onnx import OnnxRunner
from quayside.packager.golden import check_outputs
from quayside.packager.parity import DEFAULT_TOLERANCE, ParityReport, Tolerance, measure_parity
from quayside.packager.signature import Arrays, Signature

ONNX_FILE = "model.onnx"


@dataclass(frozen=True)
class Conversion:
    """A converted model that passed parity."""

    model_bytes: bytes
    opset: int
    parity: ParityReport


def _rename(graph: Any, old: str, new: str) -> None:
    if old == new:
        return
    for node in graph.node:
        node.input[:] = [new if name == old else name for name in node.input]
        node.output[:] = [new if name == old else name for name in node.output]


def align_graph(model: Any, signature: Signature) -> None:
    """Give the graph the signature's input and output names, and a variable batch on its outputs."""
    graph = model.graph
    initializers = {i.name for i in graph.initializer}
    graph_inputs = [v for v in graph.input if v.name not in initializers]
    if len(graph_inputs) == len(signature.inputs.specs):
        for value, spec in zip(graph_inputs, signature.inputs.specs, strict=True):
            _rename(graph, value.name, spec.name)
            value.name = spec.name
    if len(graph.output) != len(signature.outputs.specs):
        raise ConversionError(
            f"the ONNX graph has {len(graph.output)} outputs, the signature "
            f"{len(signature.outputs.specs)} ({', '.join(signature.outputs.names)})"
        )
    for value, spec in zip(graph.output, signature.outputs.specs, strict=True):
        _rename(graph, value.name, spec.name)
        value.name = spec.name
        dims = value.type.tensor_type.shape.dim
        if spec.batched and len(dims):
            dims[0].Clear()
            dims[0].dim_param = "N"


def _opset(model: Any) -> int:
    return max((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), default=0)


def convert(
    flavor: Flavor,
    model: Any,
    options: Options,
    signature: Signature,
    example: Arrays,
    *,
    tolerance: Tolerance = DEFAULT_TOLERANCE,
    opset: int | None = None,
    golden: Arrays | None = None,
) -> Conversion:
    """Convert a native model, then check parity on the example plus sampled rows.

    With ``golden`` (the package's golden outputs: what the model answered for
    ``example`` when it was saved), the ONNX model's answers to the example must
    also match them within the tolerance. Raises :class:`ParityError` naming
    each output that differs beyond the tolerance.
    """
    onnx = import_extra("onnx", "onnx", "ONNX conversion")
    graph = flavor.to_onnx(model, signature.inputs, options, opset)
    align_graph(graph, signature)
    try:
        onnx.checker.check_model(graph)
    except onnx.checker.ValidationError as e:
        raise ConversionError(f"the converted ONNX graph is invalid: {str(e).splitlines()[0]}") from None
    model_bytes = graph.SerializeToString()
    runner = OnnxRunner(model_bytes, signature.inputs, signature.outputs)
    rows = concat_rows(
        example, sample_like(example, signature.inputs, tolerance.samples, seed=tolerance.seed)
    )

    def native(inputs: Arrays) -> Arrays:
        return flavor.predict(model, inputs, signature.inputs, options)

    report = check_parity(native, runner.run, rows, signature, tolerance)
    if golden:
        check_golden(golden, runner.run(example), tolerance)
    return Conversion(model_bytes, _opset(graph), report)


def check_golden(golden: Arrays, answers: Arrays, tolerance: Tolerance) -> None:
    """Refuse an ONNX model that does not answer the example as the model did when it was saved.

    Parity compares with the native model as it runs here; a native model that
    answers differently here than where it was saved (another library version)
    would otherwise hand its drift on to the ONNX model unnoticed.
    """
    differences = check_outputs(golden, answers, tolerance)
    if differences:
        raise ParityError(
            "ONNX conversion refused: on the input example it does not answer as the model did when "
            "the package was saved (its golden outputs), so the native model answers differently "
            "here than where it was saved; compare this environment's versions with the package's: "
            + "; ".join(str(d) for d in differences)
        )


def check_parity(
    native: Callable[[Arrays], Arrays],
    onnx: Callable[[Arrays], Arrays],
    rows: Arrays,
    signature: Signature,
    tolerance: Tolerance,
) -> ParityReport:
    """Measure parity and refuse the conversion when any output is out of tolerance."""
    report = measure_parity(native, onnx, rows, signature.outputs, rtol=tolerance.rtol, atol=tolerance.atol)
    if not report.passed:
        raise ParityError(
            f"ONNX conversion refused, parity failed on {report.rows} rows: " + "; ".join(report.failures())
        )
    return report
