"""Flavors: one per framework, found by name or by the model object they handle."""

from __future__ import annotations

from typing import Any

from quayside.errors import UsageError
from quayside.packager.flavors.base import Flavor
from quayside.packager.flavors.lightgbm import LightGBMFlavor
from quayside.packager.flavors.onnx import OnnxFlavor
from quayside.packager.flavors.python import PythonFlavor
from quayside.packager.flavors.pytorch import PytorchFlavor
from quayside.packager.flavors.sklearn import SklearnFlavor
from quayside.packager.flavors.xgboost import XGBoostFlavor

# Order matters for detection: XGBoost and LightGBM wrappers are scikit-learn
# estimators too, and anything with predict() is a plain Python model.
FLAVORS: tuple[Flavor, ...] = (
    OnnxFlavor(),
    XGBoostFlavor(),
    LightGBMFlavor(),
    SklearnFlavor(),
    PytorchFlavor(),
    PythonFlavor(),
)

__all__ = ["FLAVORS", "Flavor", "flavor_for", "get_flavor"]


def get_flavor(name: str) -> Flavor:
    """The flavor with this name."""
    for flavor in FLAVORS:
        if flavor.name == name:
            return flavor
    known = ", ".join(f.name for f in FLAVORS)
    raise UsageError(f"unknown flavor '{name}' (known: {known})")


def flavor_for(model: Any) -> Flavor:
    """The flavor that handles this model object."""
    for flavor in FLAVORS:
        if flavor.matches(model):
            return flavor
    known = ", ".join(f.name for f in FLAVORS)
    raise UsageError(
        f"no flavor handles {type(model).__module__}.{type(model).__name__} (known: {known}); "
        "a plain Python model needs a predict() method"
    )
