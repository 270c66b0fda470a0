"""Workflows that span components, callable from Python, the CLI and the server alike.

The components (packager, tracking, registry, serving, loadtesting) do not import one
another beyond what DESIGN.md allows; what needs two of them at once lives here:

- :mod:`quayside.compose.clients`: ``Client`` and ``RegistryClient``, tracking and the
  registry wired together (``runs:/`` URIs resolve through tracking), and ``register_model``;
- :mod:`quayside.compose.models`: model URIs resolved to packages, ``load_model``, ``ModelSource``;
- :mod:`quayside.compose.loadtest`: a model served here or as an image, loaded, reported on;
- :mod:`quayside.compose.promotion`: ``promote()``: load-test a version, store the report, ask for the move;
- :mod:`quayside.compose.mlflow_registry`: an MLflow model version's source imported as a registered version;
- :mod:`quayside.compose.images`: build contexts and images of a model;
- :mod:`quayside.compose.rollout`: deployments on Docker and Kubernetes, canaries included.

Each workflow returns what it did (a dataclass) and reports progress through a
``log`` callable, so the CLI prints and Python callers choose. This package imports
no component itself: ``import quayside.compose`` stays free.
"""

from __future__ import annotations

from collections.abc import Callable

Log = Callable[[str], None]
"""Where a workflow's progress lines go (the CLI passes its stderr console's ``print``)."""


def no_log(_: str) -> None:
    """The default :data:`Log`: progress lines are dropped."""
