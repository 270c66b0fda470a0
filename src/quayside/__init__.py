"""Quayside: get a trained model into production, fast, small, safe and measured.

The public API is what ``__all__`` lists; everything else is internal. The tracking
API, the clients and ``load_model`` are imported on first use (``_dynamic_imports``),
so ``import quayside`` loads no database or HTTP library.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING

from quayside.errors import QuaysideError
from quayside.packager.convert import Tolerance
from quayside.packager.package import LoadedModel, convert_package, save_model
from quayside.packager.signature import Schema, Signature, TensorSpec, infer_signature
from quayside.version import __version__

if TYPE_CHECKING:
    from quayside.compose.clients import Client, RegistryClient, register_model
    from quayside.compose.models import load_model
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

# name -> (package, module) of what is imported on first use (pydantic's ``_dynamic_imports``):
# the serving image imports quayside, and must not need tracking, the registry or their libraries.
_dynamic_imports: dict[str, tuple[str, str]] = {
    "Client": (__spec__.parent, ".compose.clients"),
    "RegistryClient": (__spec__.parent, ".compose.clients"),
    "register_model": (__spec__.parent, ".compose.clients"),
    "load_model": (__spec__.parent, ".compose.models"),
    "Metric": (__spec__.parent, ".tracking.entities"),
    "ActiveRun": (__spec__.parent, ".tracking.fluent"),
    "active_run": (__spec__.parent, ".tracking.fluent"),
    "end_run": (__spec__.parent, ".tracking.fluent"),
    "log_artifact": (__spec__.parent, ".tracking.fluent"),
    "log_artifacts": (__spec__.parent, ".tracking.fluent"),
    "log_batch": (__spec__.parent, ".tracking.fluent"),
    "log_metric": (__spec__.parent, ".tracking.fluent"),
    "log_metrics": (__spec__.parent, ".tracking.fluent"),
    "log_model": (__spec__.parent, ".tracking.fluent"),
    "log_param": (__spec__.parent, ".tracking.fluent"),
    "log_params": (__spec__.parent, ".tracking.fluent"),
    "set_tag": (__spec__.parent, ".tracking.fluent"),
    "set_tags": (__spec__.parent, ".tracking.fluent"),
    "start_run": (__spec__.parent, ".tracking.fluent"),
}


def __getattr__(name: str) -> object:
    dynamic = _dynamic_imports.get(name)
    if dynamic is None:
        raise AttributeError(f"module 'quayside' has no attribute '{name}'")
    package, module_name = dynamic
    value = getattr(import_module(module_name, package=package), name)
    globals()[name] = value
    return value


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
