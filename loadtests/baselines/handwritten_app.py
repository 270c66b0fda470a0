"""Baseline (a): the FastAPI + ONNX Runtime endpoint a competent user writes in ten minutes.

This is the floor Quayside has to beat, so it is written the way a user would
write it and no slower: a pydantic request model, one ONNX Runtime session
loaded at import, ``sess.run`` called directly on the event loop (it takes
tens of microseconds for the benchmark's forest, less than a thread-pool hop),
and every model output returned by name. It runs in its own venv
(loadtests/.venvs/handwritten) under ``uvicorn[standard]``, so uvloop and
httptools are used.

    BENCH_ONNX_PATH=model.onnx uvicorn handwritten_app:app --port 8000
    curl -d '{"rows": [[0.1, ...20 floats...]]}' localhost:8000/predict

ONNX Runtime keeps its defaults (threads = cores, idle threads spinning), as a
user's would. The benchmark's "tuned" variant sets BENCH_ORT_THREADS, which
gives the session Quayside's settings (cores / workers threads, no spinning),
to show how much of a difference comes from those settings alone.
"""

import os
from typing import Any

import numpy as np
import onnxruntime as ort
from fastapi import FastAPI
from pydantic import BaseModel

options = ort.SessionOptions()
if "BENCH_ORT_THREADS" in os.environ:  # set only for the benchmark's "tuned" variant of this baseline
    options.intra_op_num_threads = int(os.environ["BENCH_ORT_THREADS"])
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
session = ort.InferenceSession(os.environ["BENCH_ONNX_PATH"], options, providers=["CPUExecutionProvider"])
input_name = session.get_inputs()[0].name
output_names = [output.name for output in session.get_outputs()]
app = FastAPI()


class PredictRequest(BaseModel):
    rows: list[list[float]]


@app.post("/predict")
async def predict(request: PredictRequest) -> dict[str, list[Any]]:
    features = np.asarray(request.rows, dtype=np.float32)
    results = session.run(output_names, {input_name: features})
    return {name: result.tolist() for name, result in zip(output_names, results, strict=True)}
