"""Baseline (b): BentoML serving the benchmark's ONNX model on ONNX Runtime.

Written with the current ``@bentoml.service`` API, the way BentoML's own
examples serve an ONNX model: the session is created once per worker in
``__init__``, the API takes the rows as a NumPy array and returns every model
output by name. It runs in its own venv (loadtests/.venvs/bentoml).

    BENCH_ONNX_PATH=model.onnx bentoml serve bentoml_service:OnnxModel --port 3000
    curl -d '{"rows": [[0.1, ...20 floats...]]}' localhost:3000/predict

The benchmark sets BENCH_WORKERS (equal to every other server's worker count)
and BENCH_ACCESS_LOG (off unless --access-log, as for the other servers).
"""

import os
from typing import Any

import bentoml
import numpy as np


@bentoml.service(
    workers=int(os.environ.get("BENCH_WORKERS", "1")),
    logging={"access": {"enabled": os.environ.get("BENCH_ACCESS_LOG", "0") == "1"}},
)
class OnnxModel:
    def __init__(self) -> None:
        import onnxruntime as ort

        self.session = ort.InferenceSession(os.environ["BENCH_ONNX_PATH"], providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name
        self.output_names = [output.name for output in self.session.get_outputs()]

    @bentoml.api
    def predict(self, rows: np.ndarray) -> dict[str, Any]:
        results = self.session.run(self.output_names, {self.input_name: rows.astype(np.float32)})
        return {name: result.tolist() for name, result in zip(self.output_names, results, strict=True)}
