"""The native model inside an MLflow model directory, loaded without MLflow, and the Quayside flavor it takes.

Data formats load as they are: skops (with skops's default trusted types, plus
LightGBM's own classes for LightGBM's scikit-learn wrappers, which MLflow saves in
skops by default), XGBoost's JSON/UBJ, LightGBM's text, ONNX. Pickles (scikit-learn's
pickle and cloudpickle formats, LightGBM wrappers saved that way, PyTorch modules and
``torch.export`` archives, custom ``pyfunc`` models) run code when loaded and are
refused unless ``trust=True``. A pickle that refers to a module this environment
lacks (the module of a PyTorch model's class, mlflow for a ``PythonModel``) is
reported with what to install or put on ``PYTHONPATH``.
"""

from __future__ import annotations

import bz2
import gzip
import inspect
import lzma
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quayside.errors import PackageError, UntrustedPackageError, UsageError
from quayside.packager.flavors.base import import_extra
from quayside.packager.flavors.xgboost import MODEL_CLASSES as XGBOOST_CLASSES
from quayside.packager.importers.mlflow_format import MlflowModel

# The order a multi-flavor model is read in: data formats before pickles, pyfunc last.
SUPPORTED = ("onnx", "xgboost", "lightgbm", "sklearn", "pytorch", "python_function")
PICKLE_FORMATS = ("pickle", "cloudpickle")
# What LightGBM's scikit-learn wrappers in skops format hold besides skops's defaults. Their
# state is LightGBM's text model (what a Booster file holds), so they load as data. The list is
# Quayside's own: the skops_trusted_types an MLmodel declares are the saver's word, not ours.
LIGHTGBM_SKOPS_TYPES = frozenset(
    {
        "collections.OrderedDict",
        "lightgbm.basic.Booster",
        "lightgbm.sklearn.LGBMClassifier",
        "lightgbm.sklearn.LGBMRegressor",
        "lightgbm.sklearn.LGBMRanker",
    }
)
# MLflow's python_model_compression values (MLFLOW_LOG_MODEL_COMPRESSION) and how to open such a file.
PYFUNC_COMPRESSION: Mapping[str, Callable[..., Any]] = {
    "lzma": lzma.open,
    "bzip2": bz2.open,
    "gzip": gzip.open,
}


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


# --- pickles -----------------------------------------------------------------------------


def _refuse_pickle(what: str, detail: str) -> UntrustedPackageError:
    return UntrustedPackageError(
        f"the MLflow model stores its {what} as a Python pickle ({detail}), and unpickling runs code "
        "from the file. Import it with --trust (trust=True) only if you trust where it came from"
        + ("; MLflow's skops format imports without it." if what.startswith("scikit-learn") else ".")
    )


def _missing_module_hint(source: MlflowModel, module: str, code_dir: str | None) -> str:
    distribution = module.split(".")[0].lower().replace("_", "-")
    pinned = [r for r in source.requirements if r.lower().replace("_", "-").startswith(f"{distribution}==")]
    if pinned:
        return f"install {', '.join(pinned)} (from the model's requirements) and import it again"
    if code_dir and (source.root / code_dir).is_dir():
        return (
            f"MLflow saved the model's code in '{source.root / code_dir}': put that folder on "
            "PYTHONPATH and import it again (the package's native model needs it there too)"
        )
    return "make that module importable (pip install it, or put its folder on PYTHONPATH) and import it again"


def _unpickle(load: Callable[[], Any], source: MlflowModel, what: str, code_dir: str | None = None) -> Any:
    """Run ``load`` (which unpickles), saying what to install when the pickle refers to a missing module."""
    try:
        return load()
    except ModuleNotFoundError as e:
        module = e.name or "?"
        raise PackageError(
            f"the MLflow model's {what} refers to the Python module '{module}', which is not "
            f"importable here; {_missing_module_hint(source, module, code_dir)}"
        ) from None


def _load_pickle(source: MlflowModel, path: Path, trust: bool, what: str, detail: str) -> Any:
    if not trust:
        raise _refuse_pickle(what, detail)
    import cloudpickle

    def load() -> Any:
        with path.open("rb") as f:
            return cloudpickle.load(f)

    return _unpickle(load, source, what)


def _load_skops(path: Path, trust: bool, trusted: frozenset[str] = frozenset()) -> Any:
    skops_io = import_extra("skops.io", "mlflow", "importing models saved in skops format")
    listed = list(skops_io.get_untrusted_types(file=path))
    untrusted = [t for t in listed if t not in trusted]
    if untrusted and not trust:
        raise UntrustedPackageError(
            f"the skops file '{path.name}' holds types skops does not trust by default "
            f"({', '.join(untrusted)}); loading them may run their code. Import with --trust "
            "if you trust where the model came from"
        )
    return skops_io.load(path, trusted=listed or None)


def _estimator(
    source: MlflowModel,
    config: dict[str, Any],
    trust: bool,
    what: str,
    file_key: str,
    skops_trusted: frozenset[str] = frozenset(),
) -> Any:
    path = source.file(str(config[file_key]))
    serialization = str(config.get("serialization_format") or "cloudpickle")
    if serialization == "skops":
        return _load_skops(path, trust, skops_trusted)
    if serialization in PICKLE_FORMATS:
        return _load_pickle(source, path, trust, what, f"serialization_format: {serialization}")
    raise PackageError(f"unknown serialization_format '{serialization}' of the MLflow {what}")


# --- flavors -----------------------------------------------------------------------------


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
        what = "LightGBM scikit-learn model"
        model = _estimator(source, config, trust, what, "data", LIGHTGBM_SKOPS_TYPES)
    return NativeModel(model, "lightgbm", "lightgbm")


def _onnx(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    path = source.file(str(config["data"]))
    if path.suffix != ".onnx":
        raise PackageError(f"the MLflow ONNX model's file '{path.name}' does not end in .onnx")
    return NativeModel(str(path), "onnx", "onnx")


def _pytorch(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    torch = import_extra("torch", "torch", "importing MLflow PyTorch models")
    data = source.file(str(config.get("model_data", "data")))
    exported, pickled = data / "model.pt2", data / "model.pth"
    if exported.is_file():
        return _pytorch_exported(source, exported, trust)
    if not pickled.is_file():
        raise PackageError(
            f"the MLflow PyTorch model's '{data.name}' folder holds neither model.pth (a pickled "
            "module) nor model.pt2 (a torch.export program); is the model directory complete?"
        )
    if not trust:
        raise _refuse_pickle("PyTorch module", "torch.save of the whole module")
    # weights_only=False unpickles the module's class: the caller has opted in with trust.
    model = _unpickle(
        lambda: torch.load(pickled, map_location="cpu", weights_only=False),
        source,
        "PyTorch module",
        code_dir=config.get("code"),
    )
    model.eval()
    return NativeModel(model, "pytorch", "pytorch")


def _pytorch_exported(source: MlflowModel, path: Path, trust: bool) -> NativeModel:
    """MLflow's default PyTorch format since 3.x: a ``torch.export`` archive (``data/model.pt2``)."""
    if not trust:
        # MLflow calls pt2 the safe format; torch.export.load's own documentation says it unpickles.
        raise _refuse_pickle(
            "PyTorch program", "a torch.export pt2 archive, which torch.export.load unpickles"
        )
    from quayside.packager.importers.exported_program import ExportedProgramModule

    model = _unpickle(lambda: ExportedProgramModule.from_file(path), source, "PyTorch program")
    return NativeModel(model, "pytorch", "pytorch")


@dataclass(frozen=True)
class PythonModelContext:
    """What MLflow hands a ``PythonModel``'s ``load_context`` and ``predict``: artifacts and model_config."""

    artifacts: Mapping[str, str] = field(default_factory=dict)
    model_config: Mapping[str, Any] = field(default_factory=dict)


class PythonModelAdapter:
    """An MLflow ``PythonModel`` as a Quayside python-flavor model: ``predict(data)``.

    It does what MLflow's pyfunc loader does: unpickle MLflow's ``python_model.pkl``,
    call ``load_context`` with a context holding the model's ``model_config`` (models
    with artifacts are refused at import), and pass that context to ``predict`` when
    ``predict`` takes one; ``params`` are left to their defaults. Its own pickled state
    is MLflow's pickle and the config, so each load of the package unpickles and sets
    the model up afresh, as each MLflow load does, and whatever ``load_context`` builds
    need not be picklable. Unpickling a ``PythonModel`` imports mlflow (its base
    class): loading the package needs mlflow installed, which the package's
    requirements (carried over from MLflow's) say.
    """

    def __init__(self, pickled: bytes, model_config: Mapping[str, Any]) -> None:
        self.pickled = pickled
        self.model_config = dict(model_config)
        self.context = PythonModelContext({}, self.model_config)
        self.python_model = self._load()

    def _load(self) -> Any:
        import cloudpickle

        python_model = cloudpickle.loads(self.pickled)
        load_context = getattr(python_model, "load_context", None)
        if callable(load_context):
            load_context(self.context)
        return python_model

    def predict(self, data: Any) -> Any:
        predict = self.python_model.predict
        # MLflow's rule: a predict with a parameter named context gets the context first.
        if "context" in inspect.signature(predict).parameters:
            return predict(self.context, data)
        return predict(data)

    def __getstate__(self) -> dict[str, Any]:
        return {"pickled": self.pickled, "model_config": self.model_config}

    def __setstate__(self, state: dict[str, Any]) -> None:
        try:
            self.__init__(state["pickled"], state["model_config"])
        except ModuleNotFoundError as e:
            raise PackageError(
                f"the custom pyfunc model refers to the Python module '{e.name}', which is not "
                "importable here; install the package's requirements (mlflow among them)"
            ) from None


def _pyfunc(source: MlflowModel, config: dict[str, Any], trust: bool) -> NativeModel:
    if config.get("artifacts"):
        raise UsageError(
            "the MLflow pyfunc model uses artifacts (context.artifacts), which Quayside's python "
            "flavor does not carry; import the underlying framework model instead"
        )
    if config.get("model_code_path"):
        raise UsageError(
            f"the MLflow pyfunc model is defined by code ('{config['model_code_path']}', MLflow's "
            "models from code), which only MLflow runs; Quayside imports pickled PythonModels and "
            "the framework flavors"
        )
    path = source.file(str(config.get("python_model", "python_model.pkl")))
    compression = config.get("python_model_compression")
    if compression is not None and compression not in PYFUNC_COMPRESSION:
        raise PackageError(
            f"the MLflow pyfunc model is compressed with '{compression}', which Quayside does not "
            f"read (known: {', '.join(PYFUNC_COMPRESSION)})"
        )
    if not trust:
        raise _refuse_pickle("custom pyfunc model", "cloudpickle of a PythonModel")
    with PYFUNC_COMPRESSION.get(str(compression), open)(path, "rb") as f:
        pickled = f.read()
    model_config = config.get("config") or {}
    adapter = _unpickle(lambda: PythonModelAdapter(pickled, model_config), source, "custom pyfunc model")
    return NativeModel(adapter, "python", "python_function")


LOADERS = {
    "onnx": _onnx,
    "xgboost": _xgboost,
    "lightgbm": _lightgbm,
    "sklearn": _sklearn,
    "pytorch": _pytorch,
    "python_function": _pyfunc,
}
