"""Import MLflow custom pyfunc models with Quayside, load the packages and predict, where MLflow is importable.

Runs in the MLflow venv, which holds this checkout of Quayside (tests/venvs.py):
    python mlflow_pyfunc_import.py MLFLOW_MODELS_DIR PACKAGES_DIR NAME...
Imports MLFLOW_MODELS_DIR/NAME to PACKAGES_DIR/NAME with trust, loads each package the way
a server would (quayside.load_model, trust=True) and prints one JSON line: where Quayside
was imported from, and per model the flavor it imported as and its predictions on all
150 iris rows.
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_iris

import quayside
from quayside.packager.importers.mlflow import import_mlflow_model

models, packages, names = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3:]
X = load_iris(as_frame=True).data
report = {"quayside": quayside.__file__, "models": {}}
for name in names:
    result = import_mlflow_model(models / name, packages / name, trust=True)
    predictions = quayside.load_model(packages / name, trust=True).predict(X)
    report["models"][name] = {
        "mlflow_flavor": result.mlflow_flavor,
        "onnx_error": result.onnx_error,
        "predictions": {output: np.asarray(values).tolist() for output, values in predictions.items()},
    }
print(json.dumps(report))
