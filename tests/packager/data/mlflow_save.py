"""Save models with MLflow's own API and record what MLflow's own loaders predict for them.

Runs in the MLflow venv (tests/venvs.py):  python mlflow_save.py OUT_DIR IRIS_ONNX_FILE GROUP...
For each model of the GROUPs named, writes OUT_DIR/NAME (an MLflow model directory) and
OUT_DIR/predictions/NAME.json (MLflow's predictions on all 150 iris rows). Each save infers
its requirements by loading the model in a subprocess (a few seconds each), so the test
runs the groups in two processes at once.

    sklearn   sklearn-skops, sklearn-pickle: LogisticRegression, serialization_format skops /
              cloudpickle; onnx: the ONNX graph in IRIS_ONNX_FILE
    xgboost   xgboost-classifier: XGBClassifier (the scikit-learn API) in MLflow's default UBJSON;
              xgboost-booster: a Booster from xgboost.train (multi:softprob)
    lightgbm  lightgbm-booster: a Booster from lightgbm.train (multiclass), LightGBM's text format;
              lightgbm-classifier: LGBMClassifier in MLflow's default format for it (skops);
              lightgbm-classifier-pickle: the same, serialization_format="cloudpickle"
    pytorch   pytorch-pickle: iris_net.IrisNet saved whole (serialization_format="pickle",
              code_paths=[iris_net.py]); pytorch-pt2: the same module in MLflow's default format
              (a torch.export program)
    pyfunc    pyfunc: a custom PythonModel with no artifacts, configured through model_config
              (read by load_context and by predict's context); pyfunc-lzma: the same, its pickle
              compressed (MLFLOW_LOG_MODEL_COMPRESSION)
"""

import json
import os
import sys
from pathlib import Path

import mlflow.pyfunc
import numpy as np
import pandas as pd
from sklearn.datasets import load_iris

out, onnx_file, groups = Path(sys.argv[1]), sys.argv[2], sys.argv[3:]
X, y = load_iris(return_X_y=True, as_frame=True)
features = X.to_numpy(np.float32)


def record(name, **predictions):
    folder = out / "predictions"
    folder.mkdir(exist_ok=True)
    lists = {key: np.asarray(value).tolist() for key, value in predictions.items()}
    (folder / f"{name}.json").write_text(json.dumps(lists))


def pyfunc_predict(name, data):
    return mlflow.pyfunc.load_model(str(out / name)).predict(data)


def save_sklearn():
    import mlflow.onnx
    import mlflow.sklearn
    import onnx
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(max_iter=1000).fit(X, y)
    for name, serialization in (("sklearn-skops", "skops"), ("sklearn-pickle", "cloudpickle")):
        mlflow.sklearn.save_model(
            model, out / name, serialization_format=serialization, input_example=X.head(10)
        )
        probabilities = mlflow.sklearn.load_model(str(out / name)).predict_proba(X)
        record(name, label=pyfunc_predict(name, X), probabilities=probabilities)
    mlflow.onnx.save_model(onnx.load(onnx_file), out / "onnx", input_example={"X": features[:10]})
    record("onnx", **pyfunc_predict("onnx", {"X": features}))


def save_xgboost():
    import mlflow.xgboost
    import xgboost

    classifier = xgboost.XGBClassifier(n_estimators=20, max_depth=3, random_state=0).fit(X, y)
    mlflow.xgboost.save_model(classifier, out / "xgboost-classifier", input_example=X.head(10))
    probabilities = mlflow.xgboost.load_model(str(out / "xgboost-classifier")).predict_proba(X)
    record("xgboost-classifier", label=pyfunc_predict("xgboost-classifier", X), probabilities=probabilities)

    booster = xgboost.train(
        {"objective": "multi:softprob", "num_class": 3, "max_depth": 3, "seed": 0},
        xgboost.DMatrix(X, label=y),
        num_boost_round=20,
    )
    mlflow.xgboost.save_model(booster, out / "xgboost-booster", input_example=X.head(10))
    record("xgboost-booster", prediction=pyfunc_predict("xgboost-booster", X))


def save_lightgbm():
    import lightgbm
    import mlflow.lightgbm

    booster = lightgbm.train(
        {"objective": "multiclass", "num_class": 3, "num_leaves": 7, "verbose": -1, "seed": 0},
        lightgbm.Dataset(X, label=y),
        num_boost_round=20,
    )
    mlflow.lightgbm.save_model(booster, out / "lightgbm-booster", input_example=X.head(10))
    record("lightgbm-booster", prediction=pyfunc_predict("lightgbm-booster", X))

    classifier = lightgbm.LGBMClassifier(n_estimators=20, num_leaves=7, verbose=-1, random_state=0)
    classifier.fit(X, y)
    mlflow.lightgbm.save_model(classifier, out / "lightgbm-classifier", input_example=X.head(10))
    mlflow.lightgbm.save_model(
        classifier,
        out / "lightgbm-classifier-pickle",
        serialization_format="cloudpickle",
        input_example=X.head(10),
    )
    for name in ("lightgbm-classifier", "lightgbm-classifier-pickle"):
        probabilities = mlflow.lightgbm.load_model(str(out / name)).predict_proba(X)
        record(name, label=pyfunc_predict(name, X), probabilities=probabilities)


def save_pytorch():
    import iris_net
    import mlflow.pytorch
    import torch

    net = iris_net.trained(torch.tensor(features), torch.tensor(y.to_numpy()))
    mlflow.pytorch.save_model(
        net,
        out / "pytorch-pickle",
        serialization_format="pickle",
        code_paths=[iris_net.__file__],
        input_example=features[:10],
    )
    mlflow.pytorch.save_model(net, out / "pytorch-pt2", input_example=features[:10])
    for name in ("pytorch-pickle", "pytorch-pt2"):
        with torch.no_grad():
            module_output = mlflow.pytorch.load_model(str(out / name))(torch.tensor(features))
        record(name, pyfunc=pyfunc_predict(name, features), module=module_output.numpy())


class PetalArea(mlflow.pyfunc.PythonModel):
    """Petal length × width × a scale load_context reads, and whether that is over predict's threshold."""

    def load_context(self, context):
        self.scale = float(context.model_config["scale"])

    def predict(self, context, model_input, params=None):
        area = model_input["petal length (cm)"] * model_input["petal width (cm)"] * self.scale
        return pd.DataFrame({"area": area, "wide": area > context.model_config["wide_above"]})


def save_pyfunc():
    config = {"scale": 0.5, "wide_above": 2.0}
    for name, compression in (("pyfunc", None), ("pyfunc-lzma", "lzma")):
        if compression:
            os.environ["MLFLOW_LOG_MODEL_COMPRESSION"] = compression
        mlflow.pyfunc.save_model(
            out / name, python_model=PetalArea(), model_config=config, input_example=X.head(10)
        )
        record(name, **pyfunc_predict(name, X))


SAVERS = {
    "sklearn": save_sklearn,
    "xgboost": save_xgboost,
    "lightgbm": save_lightgbm,
    "pytorch": save_pytorch,
    "pyfunc": save_pyfunc,
}
for group in groups:
    SAVERS[group]()
