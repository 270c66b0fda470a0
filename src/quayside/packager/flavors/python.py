"""The plain Python flavor: any object with a ``predict`` method, pickled with cloudpickle.

``predict`` receives a pandas DataFrame for a table signature (a dict of columns
when pandas is absent), the array for a single tensor input, and a dict of
arrays for several. It may return an array, a dict of arrays or a DataFrame.
Unpickling runs code, so loading needs trust.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any, ClassVar

from quayside.errors import ConversionError
from quayside.packager.flavors.base import Options, as_frame, named_outputs
from quayside.packager.manifest import PackageReader
from quayside.packager.signature import Arrays, Schema, Signature

MODEL_FILE = "model.pkl"


class PythonFlavor:
    """Any Python object with a callable ``predict``."""

    name: ClassVar[str] = "python"
    trust_required: ClassVar[bool] = True

    def matches(self, model: Any) -> bool:
        return callable(getattr(model, "predict", None))

    def requirements(self, model: Any, inputs: Schema) -> list[str]:
        return ["cloudpickle", "numpy"] + (["pandas"] if inputs.kind == "table" else [])

    def own_signature(self, model: Any) -> Signature | None:
        return None

    def save(self, model: Any, root: Path) -> tuple[list[str], dict[str, Any]]:
        import cloudpickle

        (root / MODEL_FILE).write_bytes(cloudpickle.dumps(model))
        return [MODEL_FILE], {"model_class": f"{type(model).__module__}.{type(model).__name__}"}

    def load(self, reader: PackageReader, options: Options, signature: Signature) -> Any:
        import cloudpickle

        return cloudpickle.loads(reader.read_bytes(MODEL_FILE))

    def predict(self, model: Any, inputs: Arrays, schema: Schema, options: Options) -> Arrays:
        return named_outputs(model.predict(_model_input(inputs, schema)))

    def to_onnx(self, model: Any, inputs: Schema, options: Options, opset: int | None) -> Any:
        raise ConversionError(
            "plain Python models cannot be converted to ONNX; save an ONNX model with the onnx flavor"
        )


def _model_input(inputs: Arrays, schema: Schema) -> Any:
    if schema.kind == "table":
        return as_frame(inputs, schema) if "pandas" in sys.modules or _has_pandas() else dict(inputs)
    if len(schema.specs) == 1:
        return inputs[schema.specs[0].name]
    return dict(inputs)


def _has_pandas() -> bool:
    try:
        import pandas  # noqa: F401
    except ImportError:
        return False
    return True
