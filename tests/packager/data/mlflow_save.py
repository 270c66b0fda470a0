"""Save models with MLflow's own API and record what MLflow's own loaders predict for them.

Runs in the MLflow venv (tests/venvs.py):  python mlflow_save.py OUT_DIR IRIS_ONNX_FILE
Writes OUT_DIR/{sklearn-skops,sklearn-pickle,onnx} (MLflow model directories) and
OUT_DIR/predictions.json (MLflow's predictions on all 150 iris rows, per model).
"""

import json
import sys
from pathlib import Path

import mlflow.onnx
import mlflow.pyfunc
import mlflow.sklearn
import numpy as np
import onnx
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

out, onnx_file = Path(sys.argv[1]), sys.argv[2]
X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=1000).fit(X, y)
mlflow.sklearn.save_model(
    model, out / "sklearn-skops", serialization_format="skops", input_example=X.head(10)
)
mlflow.sklearn.save_model(
    model, out / "sklearn-pickle", serialization_format="cloudpickle", input_example=X.head(10)
)
features = X.to_numpy(np.float32)
mlflow.onnx.save_model(onnx.load(onnx_file), out / "onnx", input_example={"X": features[:10]})

predictions = {}
for name in ("sklearn-skops", "sklearn-pickle"):
    predictions[name] = {
        "label": np.asarray(mlflow.pyfunc.load_model(str(out / name)).predict(X)).tolist(),
        "probabilities": mlflow.sklearn.load_model(str(out / name)).predict_proba(X).tolist(),
    }
onnx_outputs = mlflow.pyfunc.load_model(str(out / "onnx")).predict({"X": features})
predictions["onnx"] = {name: np.asarray(value).tolist() for name, value in onnx_outputs.items()}
(out / "predictions.json").write_text(json.dumps(predictions))
