"""Which registered version a moving model URI names now: what a server following an alias polls.

``models:/churn@champion``, ``models:/churn/production`` and ``models:/churn/latest`` move when
the registry changes; ``models:/churn/3``, ``runs:/`` URIs and paths never do. The model server
(:mod:`quayside.serving.following`) may not import the registry, so the launcher hands it
:func:`current_version`, which asks the local store or the ``quayside server`` the settings name.
"""

from __future__ import annotations

import functools

from quayside.compose.clients import RegistryClient
from quayside.registry.uris import find_version, parse_model_uri


def is_moving(uri: str) -> bool:
    """Whether ``uri`` names a version that can change: an alias, a stage, or ``latest``."""
    if not uri.startswith("models:/"):
        return False
    return parse_model_uri(uri).version is None


def current_version(uri: str) -> str | None:
    """The version ``uri`` names in the registry now, as text; None for a URI that cannot move.

    Blocking (a database query or an HTTP request): run it in a thread.
    """
    if not is_moving(uri):
        return None
    return str(find_version(parse_model_uri(uri), _registry().backend).version)


@functools.cache
def _registry() -> RegistryClient:
    # One client per process (each serving worker polls on its own), made on the first poll.
    return RegistryClient()
