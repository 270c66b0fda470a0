"""Which registered version a moving model URI names now: what a server following an alias polls.

``models:/churn@champion``, ``models:/churn/production`` and ``models:/churn/latest`` move when
the registry changes; ``models:/churn/3``, ``runs:/`` URIs and paths never do. The model server
(:mod:`quayside.serving.following`) may not import the registry, so the launcher hands it
:func:`current_version`, which asks the local store or the ``quayside server`` the settings name.
"""

from __future__ import annotations

import functools

from quayside.compose.clients import RegistryClient
from quayside.errors import UsageError
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


def following_environment(model_uri: str, registry_uri: str | None, interval_s: float) -> dict[str, str]:
    """What a deployed image is told so that it follows ``model_uri``: the URI (``MODEL_SOURCE``),
    the registry it asks (``QUAYSIDE_REGISTRY_URI``) and how often (``FOLLOW_INTERVAL``); nothing
    for a URI that cannot move or without a registry to ask."""
    if not is_moving(model_uri) or not registry_uri or not interval_s:
        return {}
    if not registry_uri.startswith(("http://", "https://")):
        raise UsageError(
            f"--registry-uri must be the http(s):// address of a quayside server the deployment can reach, "
            f"not '{registry_uri}'"
        )
    return {
        "MODEL_SOURCE": model_uri,
        "QUAYSIDE_REGISTRY_URI": registry_uri,
        "FOLLOW_INTERVAL": f"{interval_s:g}",
    }
