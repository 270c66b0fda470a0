"""Quayside: get a trained model into production, fast, small, safe and measured.

The public API is what ``__all__`` lists; everything else is internal. The tracking
API is imported on first use, so ``import quayside`` loads no database or HTTP library.
"""

from __future__ import annotations

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

from quayside.errors import QuaysideError
from quayside.packager.convert import Tolerance
from quayside.packager.package import LoadedModel, convert_package, save_model
from quayside.packager.signature import Schema, Signature, TensorSpec, infer_signature
from quayside.uris import load_model

try:
    __version__ = version("quayside")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

if TYPE_CHECKING:
    from quayside.tracking.entities import Metric
    from quayside.tracking.fluent import (
        ActiveRun,
        active_run,
        end_run,
        log_artifact,
        log_artifacts,
        log_batch,
        log_metric,
        log_metrics,
        log_model,
        log_param,
        log_params,
        set_tag,
        set_tags,
        start_run,
    )
    from quayside.uris import Client, RegistryClient, register_model

_LAZY = {
    "ActiveRun": "quayside.tracking.fluent",
    "Client": "quayside.uris",
    "active_run": "quayside.tracking.fluent",
    "end_run": "quayside.tracking.fluent",
    "log_artifact": "quayside.tracking.fluent",
    "log_artifacts": "quayside.tracking.fluent",
    "log_batch": "quayside.tracking.fluent",
    "Metric": "quayside.tracking.entities",
    "RegistryClient": "quayside.uris",
    "register_model": "quayside.uris",
    "log_metric": "quayside.tracking.fluent",
    "log_metrics": "quayside.tracking.fluent",
    "log_model": "quayside.tracking.fluent",
    "log_param": "quayside.tracking.fluent",
    "log_params": "quayside.tracking.fluent",
    "set_tag": "quayside.tracking.fluent",
    "set_tags": "quayside.tracking.fluent",
    "start_run": "quayside.tracking.fluent",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'quayside' has no attribute '{name}'")


__all__ = [
    "ActiveRun",
    "Client",
    "LoadedModel",
    "Metric",
    "QuaysideError",
    "RegistryClient",
    "Schema",
    "Signature",
    "TensorSpec",
    "Tolerance",
    "__version__",
    "active_run",
    "convert_package",
    "end_run",
    "infer_signature",
    "load_model",
    "log_artifact",
    "log_artifacts",
    "log_batch",
    "log_metric",
    "log_metrics",
    "log_model",
    "log_param",
    "log_params",
    "register_model",
    "save_model",
    "set_tag",
    "set_tags",
    "start_run",
]
