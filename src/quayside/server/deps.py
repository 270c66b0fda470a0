"""The server's typed state, built once in ``create_app``, and every FastAPI dependency over it.

:class:`AppState` holds what a request handler may use: the settings and the stores
(tracking with its artifacts, the registry with its packages, the MLflow adapter's
logged models and dataset inputs), all over one database. ``create_app`` builds it
with :meth:`AppState.from_settings` and :func:`install_state` puts it on the app; the
REST routers, the MLflow adapter and the UI's pages all take their stores from the
dependencies here (``backend: Backend``, ``registry: Registry`` ...), never from
``request.app.state`` themselves.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Annotated

from fastapi import Depends, Request
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection

from quayside.config import Settings
from quayside.errors import AuthenticationError, PermissionDeniedError
from quayside.identity.model import ACTIONS, Identity, Level, PrincipalKind, Resource, ResourceKind
from quayside.registry.stages import resolve_actor
from quayside.registry.store import RegistryStore
from quayside.server.auth import local_identity, resolve_identity
from quayside.server.sessions import SessionKeys
from quayside.tracking.mlflow_datasets import MlflowDatasetStore
from quayside.tracking.mlflow_models import MlflowModelStore
from quayside.tracking.store import TrackingStore

if TYPE_CHECKING:
    from quayside.identity.store import IdentityStore

_STATE_KEY = "quayside"
_IDENTITY_KEY = "identity"


@dataclass(frozen=True)
class AppState:
    """Everything a Quayside server's handlers share; one per app, never changed after start."""

    settings: Settings
    tracking: TrackingStore
    """Tracking metadata and the runs' artifacts."""
    registry: RegistryStore
    """Registered models, their versions, stages, aliases, audit log and packages."""
    mlflow_models: MlflowModelStore
    """Models the MLflow client logs (MLflow 3's ``LoggedModel``), in the tracking database."""
    mlflow_datasets: MlflowDatasetStore
    """Datasets the MLflow client records as run inputs, in the tracking database."""
    identity: IdentityStore
    """Users, service accounts, groups, tokens and grants, in the tracking database."""

    @functools.cached_property
    def sessions(self) -> SessionKeys:
        """The web UI's session signer; its secret is read (or made) on first use, so only with logins."""
        return SessionKeys.from_settings(self.settings)

    @classmethod
    def from_settings(cls, settings: Settings) -> AppState:
        """The stores ``settings`` name; the tracking database is opened (and migrated) here."""
        from quayside.identity.store import IdentityStore

        tracking = TrackingStore.from_settings(settings)
        return cls(
            settings=settings,
            tracking=tracking,
            registry=RegistryStore.from_settings(settings),
            mlflow_models=MlflowModelStore(tracking.sessions),
            mlflow_datasets=MlflowDatasetStore(tracking.sessions),
            identity=IdentityStore(tracking.sessions),
        )


def install_state(app: Starlette, state: AppState) -> None:
    setattr(app.state, _STATE_KEY, state)


def app_state(app: Starlette) -> AppState:
    """The state :func:`install_state` put on ``app`` (for tests and tools that hold the app itself)."""
    return getattr(app.state, _STATE_KEY)


def settings_of(app: Starlette) -> Settings | None:
    """The app's settings, or ``None`` for an app without Quayside's state (a bare test app)."""
    state = getattr(app.state, _STATE_KEY, None)
    return state.settings if isinstance(state, AppState) else None


# --- dependencies -------------------------------------------------------------------------------


def get_state(request: Request) -> AppState:
    return app_state(request.app)


def get_settings(request: Request) -> Settings:
    return get_state(request).settings


def get_backend(request: Request) -> TrackingStore:
    return get_state(request).tracking


def get_registry(request: Request) -> RegistryStore:
    return get_state(request).registry


def get_mlflow_models(request: Request) -> MlflowModelStore:
    return get_state(request).mlflow_models


def get_mlflow_datasets(request: Request) -> MlflowDatasetStore:
    return get_state(request).mlflow_datasets


def get_identity_store(request: Request) -> IdentityStore:
    return get_state(request).identity


# --- who is asking ------------------------------------------------------------------------------


def default_level(settings: Settings) -> Level:
    """What a signed-in user may do to a resource without a grant (``QUAYSIDE_AUTH_DEFAULT_PERMISSION``)."""
    return Level.parse(settings.auth_default_permission)


async def current_identity(connection: HTTPConnection) -> Identity | None:
    """The request's identity (:func:`quayside.server.auth.resolve_identity`), resolved once per request
    and kept on its state; ``None`` for a request without credentials on a server with auth on."""
    state = connection.state
    if hasattr(state, _IDENTITY_KEY):
        return getattr(state, _IDENTITY_KEY)
    app_state_ = app_state(connection.app)
    settings = app_state_.settings
    if settings.auth:
        identity = await run_in_threadpool(resolve_identity, connection, settings, app_state_.identity)
    else:
        identity = local_identity(settings)
    setattr(state, _IDENTITY_KEY, identity)
    return identity


def check_level(state: AppState, identity: Identity, resource: Resource, need: Level) -> None:
    """Nothing if ``identity`` may do ``need`` on ``resource``, else 403 saying what it has.

    For a route that learns which resource it touches only as it runs (an existing experiment
    answered to a create); the route table checks every other route before it runs. Blocking.
    """
    have = state.identity.level_for(identity, resource, default=default_level(state.settings))
    if have >= need:
        return
    has = "no permission" if have == Level.NONE else f"only {have} permission"
    raise PermissionDeniedError(
        f"'{identity.name}' has {has} on {resource}; this needs {need} "
        f"({ACTIONS[resource.kind][need][0]}): ask an admin or a manager of it for a grant"
    )


async def require_identity(request: Request) -> Identity:
    """The request's identity; 401 without one (the route's rule lets anonymous callers through)."""
    identity = await current_identity(request)
    if identity is None:
        raise AuthenticationError(
            "sign in: send an API token (Authorization: Bearer) or log in to the web UI"
        )
    return identity


async def _readable(request: Request, kind: ResourceKind) -> frozenset[str] | None:
    identity = await require_identity(request)
    if identity.is_admin:
        return None
    state = get_state(request)
    return await run_in_threadpool(
        state.identity.readable_keys, identity, kind, default=default_level(state.settings)
    )


async def readable_experiments(request: Request) -> frozenset[int] | None:
    """The ids of the experiments the caller may read, ``None`` for all: the filter every list and
    search of experiments, runs and logged models passes to its query."""
    keys = await _readable(request, ResourceKind.EXPERIMENT)
    return None if keys is None else frozenset(int(k) for k in keys if k.isascii() and k.isdigit())


async def readable_models(request: Request) -> frozenset[str] | None:
    """The names of the registered models the caller may read, ``None`` for all."""
    return await _readable(request, ResourceKind.MODEL)


State = Annotated[AppState, Depends(get_state)]
ServerSettings = Annotated[Settings, Depends(get_settings)]
Backend = Annotated[TrackingStore, Depends(get_backend)]
Registry = Annotated[RegistryStore, Depends(get_registry)]
MlflowModels = Annotated[MlflowModelStore, Depends(get_mlflow_models)]
MlflowDatasets = Annotated[MlflowDatasetStore, Depends(get_mlflow_datasets)]
Identities = Annotated["IdentityStore", Depends(get_identity_store)]
Caller = Annotated[Identity, Depends(require_identity)]
"""Who the request acts as (never ``None``: the route's rule made sure of a caller)."""
ReadableExperiments = Annotated[frozenset[int] | None, Depends(readable_experiments)]
"""Experiment ids the caller may read (``None``: all), for a list or search to filter in its query."""
ReadableModels = Annotated[frozenset[str] | None, Depends(readable_models)]
"""Registered-model names the caller may read (``None``: all)."""


def audit_actor(caller: Identity, settings: Settings, actor: str | None = None) -> str:
    """Who the audit entry names: with auth on, the caller, whatever the request says.

    An ``actor`` that names someone else is refused with 403, not overwritten: the caller is
    known, and acting under another name is something it may not do (no level allows it).
    Without auth, the request's actor, else ``QUAYSIDE_ACTOR``, else the OS user, as before.
    """
    if caller.kind == PrincipalKind.LOCAL:
        return resolve_actor(actor, settings.actor)
    if actor is not None and actor.strip() and actor.strip() != caller.name:
        raise PermissionDeniedError(
            f"the audit log records who really acts: '{caller.name}' cannot act as '{actor.strip()[:256]}'; "
            "leave the actor out"
        )
    return caller.name
