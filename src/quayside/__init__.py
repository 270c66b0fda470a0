"""Quayside: get a trained model into production, fast, small, safe and measured.

The public API is what ``__all__`` lists; everything else is internal.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

from quayside.errors import QuaysideError
from quayside.packager.convert import Tolerance
from quayside.packager.package import LoadedModel, convert_package, load_model, save_model
from quayside.packager.signature import Schema, Signature, TensorSpec, infer_signature

try:
    __version__ = version("quayside")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"

__all__ = [
    "LoadedModel",
    "QuaysideError",
    "Schema",
    "Signature",
    "TensorSpec",
    "Tolerance",
    "__version__",
    "convert_package",
    "infer_signature",
    "load_model",
    "save_model",
]
