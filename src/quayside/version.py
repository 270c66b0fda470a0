"""Quayside's version, read once from the installed distribution's metadata.

Its own module so that everything that names the version (``quayside.__version__``,
the model server's V2 metadata and OpenAPI document, image labels) reads one value,
and a component reads it without importing the public API's module.
"""

from __future__ import annotations

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("quayside")
except PackageNotFoundError:  # running from a source tree without installing
    __version__ = "0.0.0+unknown"
