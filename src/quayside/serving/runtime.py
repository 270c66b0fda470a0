"""The model a server runs: loaded once per worker, warmed, described for the protocols."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from quayside.packager.example import decode_example
from quayside.packager.package import LoadedModel, OnnxSessionConfig, Runtime, load_model
from quayside.packager.signature import Arrays, Schema, Signature, row_count
from quayside.serving.dispatch import CallCost, measure_call_cost

_COST_ROWS = 32
"""Rows of the larger call timed at warm-up, to tell the model's cost per row from its cost per call."""


@dataclass(frozen=True)
class ModelRuntime:
    """A loaded, warmed model and what the protocols need to know about it."""

    model: LoadedModel
    name: str
    version: str | None
    load_seconds: float
    """Opening the package, verifying its digests and creating the runtime session."""
    batchable: bool
    """True when every input and output has a variable first (batch) dimension."""
    call_cost: CallCost | None = None
    """The model's measured cost per call and per row; None when the package has no input example."""
    warmup_seconds: float = 0.0
    """The warm-up inferences on the input example (which also measure ``call_cost``)."""

    @property
    def signature(self) -> Signature:
        return self.model.signature

    @property
    def platform(self) -> str:
        """The V2 ``platform`` field: ``onnxruntime_onnx``, or the native flavor."""
        return (
            "onnxruntime_onnx" if self.model.runtime == "onnx" else f"quayside_{self.model.manifest.flavor}"
        )

    @property
    def memory_bytes(self) -> int:
        """What this model counts against a server's memory budget: the size of the files its
        runtime loads (the ONNX file, or the native model's files), known before it is loaded."""
        manifest = self.model.manifest
        onnx_file = manifest.onnx.file if manifest.onnx is not None else None
        if self.model.runtime == "onnx" and onnx_file is not None:
            return manifest.file(onnx_file).size
        return sum(entry.size for entry in manifest.files if entry.path != onnx_file)

    def run(self, inputs: Arrays) -> Arrays:
        """Run on checked inputs. Blocking: call it from a thread, never on the event loop."""
        return self.model.run(inputs)


def _batchable(signature: Signature) -> bool:
    def batched(schema: Schema) -> bool:
        return all(spec.batched for spec in schema.specs)

    return batched(signature.inputs) and batched(signature.outputs)


def load_runtime(
    path: str | Path,
    *,
    trust: bool = False,
    runtime: Runtime = "auto",
    intra_op_threads: int = 0,
    spinning: bool = False,
    version: str | None = None,
    name: str | None = None,
) -> ModelRuntime:
    """Load a package for serving and run its input example once, so the first request is not slow."""
    started = time.perf_counter()
    model = load_model(
        path,
        trust=trust,
        runtime=runtime,
        session=OnnxSessionConfig(intra_op_threads=intra_op_threads, spinning=spinning),
    )
    loaded = time.perf_counter()
    manifest = model.manifest
    batchable = _batchable(manifest.signature)
    cost = None
    if manifest.input_example is not None:
        example = decode_example(manifest.input_example, manifest.signature.inputs)
        model.run(example)
        cost = _measure_cost(model, example, batchable)
    return ModelRuntime(
        model=model,
        name=name or manifest.name,
        version=version,
        load_seconds=loaded - started,
        batchable=batchable,
        call_cost=cost,
        warmup_seconds=time.perf_counter() - loaded,
    )


def _measure_cost(model: LoadedModel, example: Arrays, batchable: bool) -> CallCost:
    rows = row_count(example)
    if not batchable or rows == 0:
        return measure_call_cost(model.run, example, rows, example, rows)
    one = {name: array[:1] for name, array in example.items()}
    repeats = -(-_COST_ROWS // rows)
    many = {name: np.concatenate([array] * repeats)[:_COST_ROWS] for name, array in example.items()}
    return measure_call_cost(model.run, one, 1, many, _COST_ROWS)
