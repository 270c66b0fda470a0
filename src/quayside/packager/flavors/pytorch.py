"""The PyTorch flavor: ``torch.nn.Module`` objects, saved whole with ``torch.save``.

A whole module is a pickle, so loading it runs code and needs trust; the ONNX
model exported from it does not.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from quayside.errors import ConversionError
from quayside.packager.flavors.base import (
    Options,
    import_extra,
    is_instance_by_name,
    named_outputs,
)
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

MODEL_FILE = "model.pt"


def _tensors(inputs: Arrays, schema: Schema) -> tuple[Any, ...]:
    torch = import_extra("torch", "torch")
    if schema.kind == "table":
        raise ConversionError("PyTorch models take tensors; give the model a tensor signature")
    # Arrays from a request may be read-only views; torch wants memory it could write.
    return tuple(torch.from_numpy(np.require(inputs[name], requirements="W")) for name in schema.names)


class PytorchFlavor:
    """PyTorch modules; each signature input is one positional argument of ``forward``."""

    name: ClassVar[str] = "pytorch"
    trust_required: ClassVar[bool] = True

    def matches(self, model: Any) -> bool:
        return is_instance_by_name(model, "torch.nn", ("Module",))

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return ["torch", "numpy"]

    def own_signature(self, model: Any) -> Signature | None:
        return None

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        torch = import_extra("torch", "torch", "saving PyTorch models")
        torch.save(model, root / MODEL_FILE)
        return [MODEL_FILE], {"model_class": f"{type(model).__module__}.{type(model).__name__}"}

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        torch = import_extra("torch", "torch", "loading PyTorch models")
        buffer = io.BytesIO(reader.read_bytes(MODEL_FILE))
        # weights_only=False unpickles the module's class: the caller has opted in with trust.
        model = torch.load(buffer, map_location="cpu", weights_only=False)
        model.eval()
        return model

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        torch = import_extra("torch", "torch")
        with torch.inference_mode():
            result = model(*_tensors(inputs, schema))
        if isinstance(result, dict):
            return named_outputs({k: v.numpy() for k, v in result.items()})
        if isinstance(result, tuple | list):
            return {f"output_{i}": v.numpy() for i, v in enumerate(result)}
        return {"output": result.numpy()}

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        torch = import_extra("torch", "torch", "exporting PyTorch models to ONNX")
        onnx = import_extra("onnx", "onnx")
        import_extra("onnxscript", "torch", "exporting PyTorch models to ONNX")
        examples = tuple(
            torch.zeros([2 if d == -1 else d for d in spec.shape], dtype=_torch_dtype(torch, spec.dtype))
            for spec in inputs.specs
        )
        batch = torch.export.Dim("batch")
        dynamic = tuple({0: batch} if spec.batched else {} for spec in inputs.specs)
        try:
            program = torch.onnx.export(
                model,
                examples,
                input_names=inputs.names,
                dynamic_shapes=dynamic,
                opset_version=opset,
                dynamo=True,
                verbose=False,
            )
        except Exception as e:  # the exporter raises many unrelated types
            raise ConversionError(f"torch.onnx.export failed: {str(e).splitlines()[0]}") from None
        return onnx.load_from_string(program.model_proto.SerializeToString())


def _torch_dtype(torch: Any, name: str) -> Any:
    if name == "string":
        raise ConversionError("PyTorch models cannot take string inputs")
    return getattr(torch, name)
