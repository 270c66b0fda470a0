"""The native model inside an MLflow model directory, loaded without MLflow, and the Quayside flavor it takes.

Data formats load as they are: skops (with skops's default trusted types only),
XGBoost's JSON/UBJ, LightGBM's text, ONNX. Pickles (scikit-learn's pickle and
cloudpickle formats, LightGBM's scikit-learn wrappers, PyTorch modules, custom
``pyfunc`` models) run code when loaded and are refused unless ``trust=True``.
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quayside.errors import PackageError, UntrustedPackageError, UsageError
from quayside.packager.flavors.base import import_extra
from quayside.packager.flavors.xgboost import MODEL_CLASSES as XGBOOST_CLASSES
from quayside.packager.importers.mlflow_format import MlflowModel

# The order a multi-flavor model is read in: data formats before pickles, pyfunc last.
SUPPORTED = ("onnx", "xgboost", "lightgbm", "sklearn", "pytorch", "python_function")
PICKLE_FORMATS = ("pickle", "cloudpickle")


@dataclass(frozen=True)
class NativeModel:
    """The model object (a path for ONNX), the Quayside flavor that saves it, and the MLflow flavor it came from."""

    model: Any
    flavor: str
    mlflow_flavor: str


def load_native(source: MlflowModel, *, trust: bool = False) -> NativeModel:
    """Load the model of the first supported flavor the MLflow model declares."""
    for name in SUPPORTED:
        config = source.flavors.get(name)
        if config is None:
            continue
        if name == "python_function" and config.get("loader_module") != "mlflow.pyfunc.model":
            continue  # the pyfunc face of a framework flavor that is not supported
        return LOADERS[name](source, dict(config), trust)
    declared = ", ".join(sorted(source.flavors)) or "none"
    raise UsageError(
        f"the MLflow model's flavors ({declared}) are not ones Quayside imports "
        "(sklearn, xgboost, lightgbm, onnx, pytorch, pyfunc)"
    )


def _refuse_pickle(what: str, detail: str) -> UntrustedPackageError:
    return UntrustedPackageError(
        f"the MLflow model stores its {what} as a Python pickle ({detail}), and unpickling runs code "
        "from the file. Import it with --trust (trust=True) only if you trust where it came from"
        + ("; MLflow's skops format imports without it." if what.startswith("scikit-learn") else ".")
    )


def _load_pickle(path: Path, trust: bool, what: str, detail: str) -> Any:
    if not trust:
        raise _refuse_pickle(what, detail)
    import cloudpickle

    with path.open("rb") as f:
        return cloudpickle.load(f)


def _load_skops(path: Path, trust: bool) -> Any:
    skops_io = import_extra("skops.io", "mlflow", "importing models saved in skops format")
    untrusted = list(skops_io.get_untrusted_types(file=path))
    if untrusted and not trust:
        raise UntrustedPackageError(
            f"the skops file '{path.name}' holds types skops does not trust by default "
            f"({', '.join(untrusted)}); loading them may run their code. Import with --trust "
            "if you trust where the model came from"
        )
    return skops_io.load(path, trusted=untrusted or None)


def _estimator(source: MlflowModel, config: dict[str, Any], trust: bool, what: str, file_key: str) -> Any:
    path = source.file(str(config[file_key]))
    serialization = str(config.get("serialization_format") or "cloudpickle")
    if serialization == "skops":
        return _load_skops(path, trust)
    if serialization in PICKLE_FORMATS:
        return _load_pickle(path, trust, what, f"serialization_format: {serialization}")
    raise PackageError(f"unknown serialization_format '{serialization}' of the MLflow {what}")


def _sklearn(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    import_extra("sklearn", "sklearn", "importing MLflow scikit-learn models")
    model = _estimator(source, config, trust, "scikit-learn model", "pickled_model")
    return NativeModel(model, "sklearn", "sklearn")


def _xgboost(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    xgboost = import_extra("xgboost", "xgboost", "importing MLflow XGBoost models")
    class_name = str(config.get("model_class", "xgboost.core.Booster")).rsplit(".", 1)[-1]
    if class_name not in XGBOOST_CLASSES:
        raise PackageError(f"unknown XGBoost model class '{class_name}' in the MLflow model")
    model = getattr(xgboost, class_name)()
    model.load_model(str(source.file(str(config["data"]))))
    return NativeModel(model, "xgboost", "xgboost")


def _lightgbm(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    lightgbm = import_extra("lightgbm", "lightgbm", "importing MLflow LightGBM models")
    if str(config.get("model_class", "")).endswith("Booster"):
        model = lightgbm.Booster(model_file=str(source.file(str(config["data"]))))
    else:
        model = _estimator(source, config, trust, "LightGBM scikit-learn model", "data")
    return NativeModel(model, "lightgbm", "lightgbm")


def _onnx(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    path = source.file(str(config["data"]))
    if path.suffix != ".onnx":
        raise PackageError(f"the MLflow ONNX model's file '{path.name}' does not end in .onnx")
    return NativeModel(str(path), "onnx", "onnx")


def _pytorch(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    torch = import_extra("torch", "torch", "importing MLflow PyTorch models")
    path = source.file(str(config.get("model_data", "data"))) / "model.pth"
    if not path.is_file():
        raise PackageError(
            "the MLflow PyTorch model is not a pickled module (data/model.pth); Quayside does not "
            "import the pt2 (torch.export) format"
        )
    if not trust:
        raise _refuse_pickle("PyTorch module", "torch.save of the whole module")
    # weights_only=False unpickles the module's class: the caller has opted in with trust.
    model = torch.load(path, map_location="cpu", weights_only=False)
    model.eval()
    return NativeModel(model, "pytorch", "pytorch")


class PythonModelAdapter:
    """An MLflow ``PythonModel`` as a Quayside python-flavor model: ``predict(data)``.

    The MLflow model's ``predict(context, model_input, params=None)`` gets no context
    (models with artifacts are refused at import) and no params.
    """

    def __init__(self, python_model: Any) -> None:
        self.python_model = python_model

    def predict(self, data: Any) -> Any:
        predict = self.python_model.predict
        takes_context = next(iter(inspect.signature(predict).parameters), None) == "context"
        return predict(None, data) if takes_context else predict(data)


def _pyfunc(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    if config.get("artifacts"):
        raise UsageError(
            "the MLflow pyfunc model uses artifacts (context.artifacts), which Quayside's python "
            "flavor does not carry; import the underlying framework model instead"
        )
    path = source.file(str(config.get("python_model", "python_model.pkl")))
    # Unpickling a PythonModel imports mlflow (its base class): the pyfunc's requirements say so.
    python_model = _load_pickle(path, trust, "custom pyfunc model", "cloudpickle of a PythonModel")
    return NativeModel(PythonModelAdapter(python_model), "python", "python_function")


LOADERS = {
    "onnx": _onnx,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "sklearn": _sklearn,
    "pytorch": _pytorch,
    "python_function": _pyfunc,
}
