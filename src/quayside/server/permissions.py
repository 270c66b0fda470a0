"""The one route-permission table of ``quayside server``, and the check that enforces it, fail-closed.

Every route the app serves — Quayside's REST API, the MLflow-compatible API (its artifact
proxy and logged models included), the web UI's pages, health, docs and static files — has
one :class:`Rule` in :data:`RULES`, keyed by ``"METHOD /path"`` as the route is declared
(``/api/tracking/runs/{run_id}``). A rule says who may call the route:

- :meth:`Rule.public`: anyone, no credentials read (health, docs, static files, the login page);
- :meth:`Rule.authenticated`: any signed-in identity (creating an experiment or a model, whose
  creator then gets ``manage``; lists and searches, which filter to what the caller may read);
- :meth:`Rule.admin`: admins only;
- :meth:`Rule.on`: a level on the experiment or registered model that a locator finds from
  the path, the query or the JSON body (a run's experiment, a version's model ...). Each such
  rule names the entry of :data:`quayside.identity.model.ACTIONS` it enforces, and is refused at
  import if that entry is not in the table for that level: ACTIONS is the source of truth.

Some levels depend on the request: a stage transition into production, or out of it (archiving
what serves), needs ``manage``, any other ``edit``; changing ``allow_multiple_production`` needs
``manage``. Registering the first version of a model that does not exist yet creates it, which
any signed-in caller may.

:func:`authorize` is an app-wide FastAPI dependency (``FastAPI(dependencies=[...])``): it finds
the rule of the route FastAPI matched (``request.scope["route"]``, at the path it is served
under) and refuses a route that has none with 403. Routes that
are not FastAPI routes (the static files' mount, the OpenAPI document) get the same check in
front of them from :class:`RouteGuard` when the app's middleware stack is built. Without auth
the rule is still looked up (a route without one is still refused); the local identity is an
admin, so nothing is located. Anonymous callers get 401 on every rule but ``public``; a known
identity with too little permission gets 403.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from typing import Any

from fastapi.routing import APIRoute
from starlette.concurrency import run_in_threadpool
from starlette.requests import HTTPConnection, Request
from starlette.routing import BaseRoute, Mount, Route, Router
from starlette.types import ASGIApp, Receive, Scope, Send

from quayside.compose.mlflow_registry import registered_path
from quayside.errors import NotFoundError, PermissionDeniedError, UsageError
from quayside.identity.model import ACTIONS, Identity, Level, Resource, ResourceKind
from quayside.registry.rest import API_PREFIX as REGISTRY_PREFIX
from quayside.registry.stages import Stage
from quayside.server.deps import AppState, app_state, default_level, require_identity
from quayside.server.mlflow import ARTIFACTS_PREFIXES, MLFLOW_PREFIXES
from quayside.server.mlflow.messages import experiment_id_of
from quayside.server.mlflow.registry_messages import version_number
from quayside.server.mlflow.stages import to_quayside
from quayside.tracking.rest import API_PREFIX as TRACKING_PREFIX

EXPERIMENT, MODEL = ResourceKind.EXPERIMENT, ResourceKind.MODEL
READ, EDIT, MANAGE = Level.READ, Level.EDIT, Level.MANAGE

Locator = Callable[[HTTPConnection, AppState], Awaitable[Sequence[Resource]]]
"""Finds the resources a request touches (from its path, query or JSON body); every one must allow
the rule's level. An empty answer means the request creates the resource (see :func:`new_or_model`)."""
LevelFor = Callable[[HTTPConnection, AppState], Awaitable[Level]]
"""A level that depends on the request (a stage transition into production needs more)."""


class Need(Enum):
    PUBLIC = "public"
    AUTHENTICATED = "authenticated"
    ADMIN = "admin"
    RESOURCE = "resource"


@dataclass(frozen=True)
class Rule:
    """Who may call one route: see the module docstring."""

    need: Need
    kind: ResourceKind | None = None
    level: Level = Level.NONE
    locate: Locator | None = None
    allows: str = ""
    """The ACTIONS entry this rule enforces (a part of its text)."""
    raise_to: LevelFor | None = None
    """A higher level some requests need (production), worked out from the request."""

    @classmethod
    def public(cls) -> Rule:
        return cls(Need.PUBLIC)

    @classmethod
    def authenticated(cls) -> Rule:
        return cls(Need.AUTHENTICATED)

    @classmethod
    def admin(cls) -> Rule:
        return cls(Need.ADMIN)

    @classmethod
    def on(
        cls,
        kind: ResourceKind,
        level: Level,
        locate: Locator,
        allows: str,
        *,
        raise_to: LevelFor | None = None,
    ) -> Rule:
        if not any(allows in action for action in ACTIONS[kind][level]):
            raise ValueError(f"ACTIONS does not let {level} on a {kind} '{allows}'")
        return cls(Need.RESOURCE, kind, level, locate, allows, raise_to)


# --- locators -------------------------------------------------------------------------------------


async def _json_body(connection: HTTPConnection) -> dict[str, Any]:
    # Starlette keeps the body it read, so the route parses the same bytes afterwards.
    assert isinstance(connection, Request)
    try:
        body = await connection.json()
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


def _text(value: Any, what: str) -> str:
    if not isinstance(value, str | int) or isinstance(value, bool) or str(value) == "":
        raise UsageError(f"missing value for required parameter '{what}'")
    return str(value)


def _experiment(key: str | int) -> list[Resource]:
    return [Resource(EXPERIMENT, str(key))]


def _first(values: dict[str, Any] | Any, names: tuple[str, ...]) -> Any:
    for name in names:
        value = values.get(name)
        if value not in (None, ""):
            return value
    return None


def experiment_in_path(param: str = "experiment_id") -> Locator:
    async def locate(connection: HTTPConnection, _state: AppState) -> list[Resource]:
        return _experiment(connection.path_params[param])

    return locate


def experiment_in_body(field: str = "experiment_id") -> Locator:
    async def locate(connection: HTTPConnection, _state: AppState) -> list[Resource]:
        return _experiment(_text((await _json_body(connection)).get(field), field))

    return locate


def experiment_named_in_query(param: str) -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        name = _text(connection.query_params.get(param), param)
        found = await run_in_threadpool(state.tracking.get_experiment_by_name, name)
        return _experiment(found.id)

    return locate


async def _mlflow_experiment(value: Any, state: AppState, what: str) -> list[Resource]:
    # "0" is MLflow's default experiment: Quayside's QUAYSIDE_EXPERIMENT, made on first use.
    experiment_id = await run_in_threadpool(
        experiment_id_of, _text(value, what), state.tracking, state.settings
    )
    return _experiment(experiment_id)


def mlflow_experiment_in_body(field: str = "experiment_id") -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        value = (await _json_body(connection)).get(field, "0")
        return await _mlflow_experiment(value, state, field)

    return locate


def mlflow_experiment_in_query(param: str = "experiment_id") -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _mlflow_experiment(connection.query_params.get(param), state, param)

    return locate


async def _runs(run_ids: Iterable[str], state: AppState) -> list[Resource]:
    return [
        Resource(EXPERIMENT, str(await run_in_threadpool(state.tracking.run_experiment_id, run_id)))
        for run_id in run_ids
    ]


def run_in_path(param: str = "run_id") -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _runs([connection.path_params[param]], state)

    return locate


def run_in_query(*params: str) -> Locator:
    """The run whose id is the first of ``params`` given (MLflow: ``run_id``, else ``run_uuid``)."""

    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _runs([_text(_first(connection.query_params, params), params[0])], state)

    return locate


def runs_in_query(param: str) -> Locator:
    """Every run a repeated query parameter names (the UI's comparison: ``?run=a&run=b``)."""

    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _runs(connection.query_params.getlist(param), state)

    return locate


def run_in_body(*fields: str) -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _runs([_text(_first(await _json_body(connection), fields), fields[0])], state)

    return locate


def _artifact_run(path: str | None) -> str:
    run_id = (path or "").strip("/").partition("/")[0]
    if not run_id:
        raise UsageError("an artifact path starts with the run id: <run id>/<path>")
    return run_id


async def _artifact_owner(path: str | None, state: AppState) -> list[Resource]:
    """A run's experiment, or the registered model of ``registered-models/<name>/<version>/...``
    (a version's MLflow files, read-only: the PUT route refuses every such path)."""
    registered = registered_path(path or "")
    if registered is not None:
        return [Resource(MODEL, registered.name)]
    return await _runs([_artifact_run(path)], state)


def artifact_run_in_path(param: str = "path") -> Locator:
    """MLflow's proxied artifacts: ``<run id>/<path in the run>``, or a registered version's MLflow files."""

    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _artifact_owner(connection.path_params.get(param), state)

    return locate


def artifact_run_in_query(param: str = "path") -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        return await _artifact_owner(connection.query_params.get(param), state)

    return locate


def logged_model_in_path(param: str = "model_id") -> Locator:
    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        model = await run_in_threadpool(state.mlflow_models.get, connection.path_params[param])
        return _experiment(model.experiment_id)

    return locate


async def _new_logged_model(connection: HTTPConnection, state: AppState) -> list[Resource]:
    """The source run's experiment (the route refuses a body whose experiment differs from it)."""
    body = await _json_body(connection)
    if body.get("source_run_id"):
        return await _runs([_text(body["source_run_id"], "source_run_id")], state)
    return await _mlflow_experiment(body.get("experiment_id", "0"), state, "experiment_id")


def model_in_path(param: str = "name") -> Locator:
    async def locate(connection: HTTPConnection, _state: AppState) -> list[Resource]:
        return [Resource(MODEL, connection.path_params[param])]

    return locate


NEW_MODEL_KEY = "creates_model"


def new_or_model(param: str = "name") -> Locator:
    """The model in the path, or nothing when it does not exist yet: registering its first version
    creates it, which any signed-in caller may (and the route then makes them its manager)."""

    async def locate(connection: HTTPConnection, state: AppState) -> list[Resource]:
        name = connection.path_params[param]
        try:
            await run_in_threadpool(state.registry.get_model, name)
        except NotFoundError:
            setattr(connection.state, NEW_MODEL_KEY, True)
            return []
        return [Resource(MODEL, name)]

    return locate


def creates_model(connection: HTTPConnection) -> bool:
    """Whether the permission check let this request through as the creator of a new model."""
    return bool(getattr(connection.state, NEW_MODEL_KEY, False))


async def production_move(connection: HTTPConnection, state: AppState) -> Level:
    """MANAGE for a transition into production, or out of it (archiving what serves); else EDIT."""
    target = str((await _json_body(connection)).get("stage", "")).strip().lower()
    if target == Stage.PRODUCTION:
        return MANAGE
    name, version = connection.path_params["name"], connection.path_params["version"]
    if not version.isascii() or not version.isdigit():
        return EDIT  # the route answers 400 for the version number
    try:
        found = await run_in_threadpool(state.registry.get_version, name, int(version))
    except NotFoundError:
        return EDIT  # the route answers 404
    return MANAGE if found.stage == Stage.PRODUCTION else EDIT


def mlflow_model(field: str = "name") -> Locator:
    """The registered model MLflow names: in the query of a GET, else in the JSON body (or the query)."""

    async def locate(connection: HTTPConnection, _state: AppState) -> list[Resource]:
        value = connection.query_params.get(field)
        if connection.scope.get("method") != "GET":
            value = (await _json_body(connection)).get(field) or value
        return [Resource(MODEL, _text(value, field))]

    return locate


async def mlflow_production_move(connection: HTTPConnection, state: AppState) -> Level:
    """:func:`production_move` for MLflow's ``transition-stage`` (``name``, ``version``, ``stage`` in the body)."""
    body = await _json_body(connection)
    try:
        if to_quayside(str(body.get("stage", ""))) == Stage.PRODUCTION:
            return MANAGE
        name, version = _text(body.get("name"), "name"), version_number(str(body.get("version", "")))
        found = await run_in_threadpool(state.registry.get_version, name, version)
    except (UsageError, NotFoundError):
        return EDIT  # the route answers 400 or 404
    return MANAGE if found.stage == Stage.PRODUCTION else EDIT


async def production_policy(connection: HTTPConnection, _state: AppState) -> Level:
    """Changing how many versions may be in production at once is a manager's decision."""
    body = await _json_body(connection)
    return MANAGE if body.get("allow_multiple_production") is not None else EDIT


# --- the table ------------------------------------------------------------------------------------

SEE_EXPERIMENT = "see the experiment"
DOWNLOAD_ARTIFACTS = "download the runs' artifacts"
LOG = "log params, metrics, tags, inputs, artifacts and models"
CREATE_RUNS = "create runs"
CHANGE_RUNS = "end, rename and delete runs"
MANAGE_EXPERIMENT = "rename and delete the experiment"
SEE_MODEL = "see the model, its versions"
DOWNLOAD_PACKAGES = "download its packages"
REGISTER = "register versions"
DESCRIBE = "change descriptions and tags"
MOVE = "move versions between candidate, staging and archived; set and delete aliases"
DELETE_MODEL = "delete versions and the model"

PUBLIC, SIGNED_IN = Rule.public(), Rule.authenticated()


def _under(prefix: str, rules: dict[str, Rule]) -> dict[str, Rule]:
    """``"METHOD /path"`` keys with ``prefix`` put in front of each path."""
    prefixed = {}
    for key, rule in rules.items():
        method, _, path = key.partition(" ")
        prefixed[f"{method} {prefix}{path}"] = rule
    return prefixed


TRACKING_RULES: dict[str, Rule] = {
    "POST /experiments": SIGNED_IN,  # the creator gets manage
    "GET /experiments": SIGNED_IN,  # filtered to what the caller may read
    "GET /experiments/lookup": Rule.on(EXPERIMENT, READ, experiment_named_in_query("name"), SEE_EXPERIMENT),
    "GET /experiments/{experiment_id}": Rule.on(EXPERIMENT, READ, experiment_in_path(), SEE_EXPERIMENT),
    "PATCH /experiments/{experiment_id}": Rule.on(
        EXPERIMENT, MANAGE, experiment_in_path(), MANAGE_EXPERIMENT
    ),
    "DELETE /experiments/{experiment_id}": Rule.on(
        EXPERIMENT, MANAGE, experiment_in_path(), MANAGE_EXPERIMENT
    ),
    "POST /runs": Rule.on(EXPERIMENT, EDIT, experiment_in_body(), CREATE_RUNS),
    "POST /runs/search": SIGNED_IN,  # filtered in the query
    "GET /runs/{run_id}": Rule.on(EXPERIMENT, READ, run_in_path(), SEE_EXPERIMENT),
    "PATCH /runs/{run_id}": Rule.on(EXPERIMENT, EDIT, run_in_path(), CHANGE_RUNS),
    "DELETE /runs/{run_id}": Rule.on(EXPERIMENT, EDIT, run_in_path(), CHANGE_RUNS),
    "POST /runs/{run_id}/batch": Rule.on(EXPERIMENT, EDIT, run_in_path(), LOG),
    "GET /runs/{run_id}/metrics/history": Rule.on(EXPERIMENT, READ, run_in_path(), SEE_EXPERIMENT),
    "POST /runs/{run_id}/models": Rule.on(EXPERIMENT, EDIT, run_in_path(), LOG),
    "GET /runs/{run_id}/artifacts": Rule.on(EXPERIMENT, READ, run_in_path(), DOWNLOAD_ARTIFACTS),
    "GET /runs/{run_id}/artifacts/file": Rule.on(EXPERIMENT, READ, run_in_path(), DOWNLOAD_ARTIFACTS),
    "PUT /runs/{run_id}/artifacts/file": Rule.on(EXPERIMENT, EDIT, run_in_path(), LOG),
}

_model = model_in_path()
REGISTRY_RULES: dict[str, Rule] = {
    "POST /models": SIGNED_IN,  # the creator gets manage
    "GET /models": SIGNED_IN,  # filtered to what the caller may read
    "GET /models/{name}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "PATCH /models/{name}": Rule.on(MODEL, EDIT, _model, DESCRIBE, raise_to=production_policy),
    "DELETE /models/{name}": Rule.on(MODEL, MANAGE, _model, DELETE_MODEL),
    "GET /models/{name}/history": Rule.on(MODEL, READ, _model, "audit log"),
    "POST /models/{name}/versions": Rule.on(MODEL, EDIT, new_or_model(), REGISTER),
    "GET /models/{name}/versions": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /models/{name}/latest": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /models/{name}/versions/{version}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "PATCH /models/{name}/versions/{version}": Rule.on(MODEL, EDIT, _model, DESCRIBE),
    "DELETE /models/{name}/versions/{version}": Rule.on(MODEL, MANAGE, _model, DELETE_MODEL),
    "GET /models/{name}/versions/{version}/package": Rule.on(MODEL, READ, _model, DOWNLOAD_PACKAGES),
    "POST /models/{name}/versions/{version}/transition": Rule.on(
        MODEL, EDIT, _model, MOVE, raise_to=production_move
    ),
    "GET /models/{name}/policy": Rule.on(MODEL, READ, _model, "promotion policy"),
    "PATCH /models/{name}/policy": Rule.on(MODEL, MANAGE, _model, "set the promotion policy"),
    "POST /models/{name}/versions/{version}/loadtests": Rule.on(
        MODEL, EDIT, _model, "store load-test reports"
    ),
    "GET /models/{name}/versions/{version}/loadtests": Rule.on(MODEL, READ, _model, "load-test reports"),
    "GET /models/{name}/versions/{version}/loadtests/{report_id}": Rule.on(
        MODEL, READ, _model, "load-test reports"
    ),
    "GET /models/{name}/versions/{version}/loadtests/{report_id}/html": Rule.on(
        MODEL, READ, _model, "load-test reports"
    ),
    # A build record needs what a load-test report needs (ACTIONS names no build records of its own yet).
    "POST /models/{name}/versions/{version}/builds": Rule.on(MODEL, EDIT, _model, "store build records"),
    "GET /models/{name}/versions/{version}/builds": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /models/{name}/versions/{version}/builds/{build_id}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /models/{name}/aliases/{alias}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "PUT /models/{name}/aliases/{alias}": Rule.on(MODEL, EDIT, _model, MOVE),
    "DELETE /models/{name}/aliases/{alias}": Rule.on(MODEL, EDIT, _model, MOVE),
}

_mlflow_model = mlflow_model()
_mlflow_run = run_in_body("run_id", "run_uuid")
_mlflow_run_query = run_in_query("run_id", "run_uuid")
_logged_model = logged_model_in_path()
MLFLOW_RULES: dict[str, Rule] = {
    "POST /experiments/create": SIGNED_IN,  # the creator gets manage
    "GET /experiments/get": Rule.on(EXPERIMENT, READ, mlflow_experiment_in_query(), SEE_EXPERIMENT),
    "GET /experiments/get-by-name": Rule.on(
        EXPERIMENT, READ, experiment_named_in_query("experiment_name"), SEE_EXPERIMENT
    ),
    "POST /experiments/search": SIGNED_IN,  # filtered in the query
    "POST /experiments/update": Rule.on(EXPERIMENT, MANAGE, mlflow_experiment_in_body(), MANAGE_EXPERIMENT),
    "POST /experiments/delete": Rule.on(EXPERIMENT, MANAGE, mlflow_experiment_in_body(), MANAGE_EXPERIMENT),
    "POST /experiments/restore": Rule.on(EXPERIMENT, MANAGE, mlflow_experiment_in_body(), MANAGE_EXPERIMENT),
    # The experiment's tags are its own metadata, like its name: changing them is managing it.
    "POST /experiments/set-experiment-tag": Rule.on(
        EXPERIMENT, MANAGE, mlflow_experiment_in_body(), MANAGE_EXPERIMENT
    ),
    "POST /experiments/delete-experiment-tag": Rule.on(
        EXPERIMENT, MANAGE, mlflow_experiment_in_body(), MANAGE_EXPERIMENT
    ),
    "POST /runs/create": Rule.on(EXPERIMENT, EDIT, mlflow_experiment_in_body(), CREATE_RUNS),
    "GET /runs/get": Rule.on(EXPERIMENT, READ, _mlflow_run_query, SEE_EXPERIMENT),
    "POST /runs/update": Rule.on(EXPERIMENT, EDIT, _mlflow_run, CHANGE_RUNS),
    "POST /runs/delete": Rule.on(EXPERIMENT, EDIT, _mlflow_run, CHANGE_RUNS),
    "POST /runs/restore": Rule.on(EXPERIMENT, EDIT, _mlflow_run, CHANGE_RUNS),
    "POST /runs/search": SIGNED_IN,  # filtered in the query
    "POST /runs/log-metric": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/log-parameter": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/set-tag": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/delete-tag": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/log-batch": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/log-inputs": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "POST /runs/outputs": Rule.on(EXPERIMENT, EDIT, _mlflow_run, LOG),
    "GET /metrics/get-history": Rule.on(EXPERIMENT, READ, _mlflow_run_query, SEE_EXPERIMENT),
    "POST /logged-models": Rule.on(EXPERIMENT, EDIT, _new_logged_model, LOG),
    "POST /logged-models/search": SIGNED_IN,  # filtered in the query
    "GET /logged-models/{model_id}": Rule.on(EXPERIMENT, READ, _logged_model, "logged models"),
    "DELETE /logged-models/{model_id}": Rule.on(EXPERIMENT, EDIT, _logged_model, LOG),
    "PATCH /logged-models/{model_id}": Rule.on(EXPERIMENT, EDIT, _logged_model, LOG),
    "PATCH /logged-models/{model_id}/tags": Rule.on(EXPERIMENT, EDIT, _logged_model, LOG),
    "DELETE /logged-models/{model_id}/tags/{key:path}": Rule.on(EXPERIMENT, EDIT, _logged_model, LOG),
    "POST /logged-models/{model_id}/params": Rule.on(EXPERIMENT, EDIT, _logged_model, LOG),
    # The model registry: the model is `name` in the query (GET) or the JSON body.
    "POST /registered-models/create": SIGNED_IN,  # the creator gets manage
    "GET /registered-models/get": Rule.on(MODEL, READ, _mlflow_model, SEE_MODEL),
    # The old name goes, as in a delete, and the grants follow the model to its new one.
    "POST /registered-models/rename": Rule.on(MODEL, MANAGE, _mlflow_model, DELETE_MODEL),
    "PATCH /registered-models/update": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "DELETE /registered-models/delete": Rule.on(MODEL, MANAGE, _mlflow_model, DELETE_MODEL),
    "GET /registered-models/search": SIGNED_IN,  # filtered to what the caller may read
    "GET /registered-models/get-latest-versions": Rule.on(MODEL, READ, _mlflow_model, SEE_MODEL),
    "POST /registered-models/get-latest-versions": Rule.on(MODEL, READ, _mlflow_model, SEE_MODEL),
    "POST /registered-models/set-tag": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "DELETE /registered-models/delete-tag": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "GET /registered-models/alias": Rule.on(MODEL, READ, _mlflow_model, SEE_MODEL),
    "POST /registered-models/alias": Rule.on(MODEL, EDIT, _mlflow_model, MOVE),  # a protected one: the policy
    "DELETE /registered-models/alias": Rule.on(MODEL, EDIT, _mlflow_model, MOVE),
    # The route also checks read on the experiment of the run the files come from.
    "POST /model-versions/create": Rule.on(MODEL, EDIT, _mlflow_model, REGISTER),
    "GET /model-versions/get": Rule.on(MODEL, READ, _mlflow_model, SEE_MODEL),
    "PATCH /model-versions/update": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "DELETE /model-versions/delete": Rule.on(MODEL, MANAGE, _mlflow_model, DELETE_MODEL),
    "GET /model-versions/search": SIGNED_IN,  # filtered to what the caller may read
    "POST /model-versions/set-tag": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "DELETE /model-versions/delete-tag": Rule.on(MODEL, EDIT, _mlflow_model, DESCRIBE),
    "POST /model-versions/transition-stage": Rule.on(
        MODEL, EDIT, _mlflow_model, MOVE, raise_to=mlflow_production_move
    ),
    "GET /model-versions/get-download-uri": Rule.on(MODEL, READ, _mlflow_model, DOWNLOAD_PACKAGES),
    # The catch-all that answers ENDPOINT_NOT_FOUND: nothing to protect, but no reason to talk to strangers.
    "GET /{endpoint:path}": SIGNED_IN,
    "POST /{endpoint:path}": SIGNED_IN,
    "PATCH /{endpoint:path}": SIGNED_IN,
    "DELETE /{endpoint:path}": SIGNED_IN,
}

MLFLOW_ARTIFACT_RULES: dict[str, Rule] = {
    "GET /artifacts": Rule.on(EXPERIMENT, READ, artifact_run_in_query(), DOWNLOAD_ARTIFACTS),
    "GET /artifacts/{path:path}": Rule.on(EXPERIMENT, READ, artifact_run_in_path(), DOWNLOAD_ARTIFACTS),
    "PUT /artifacts/{path:path}": Rule.on(EXPERIMENT, EDIT, artifact_run_in_path(), LOG),
}

_ui_run = run_in_path()
UI_RULES: dict[str, Rule] = {
    "GET /": SIGNED_IN,  # lists only what the caller may read
    "GET /experiments/{experiment_id}": Rule.on(EXPERIMENT, READ, experiment_in_path(), SEE_EXPERIMENT),
    "GET /runs/{run_id}": Rule.on(EXPERIMENT, READ, _ui_run, SEE_EXPERIMENT),
    "GET /runs/{run_id}/artifacts/view": Rule.on(EXPERIMENT, READ, _ui_run, DOWNLOAD_ARTIFACTS),
    "GET /runs/{run_id}/artifacts/image": Rule.on(EXPERIMENT, READ, _ui_run, DOWNLOAD_ARTIFACTS),
    "GET /compare": Rule.on(EXPERIMENT, READ, runs_in_query("run"), SEE_EXPERIMENT),
    "GET /models": SIGNED_IN,  # lists only what the caller may read
    "GET /models/{name}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /models/{name}/versions/{version}": Rule.on(MODEL, READ, _model, SEE_MODEL),
    "GET /static": PUBLIC,  # the UI's own CSS and JS (a mount: RouteGuard checks it)
    "GET /login": PUBLIC,
    "POST /login": PUBLIC,  # checks its own CSRF token (server/sessions.py)
    "POST /logout": PUBLIC,  # so that an expired session can still be ended; checks its CSRF token
}

SERVER_RULES: dict[str, Rule] = {
    "GET /health": PUBLIC,
    "GET /health/ready": PUBLIC,
    "GET /docs": PUBLIC,
    "GET /openapi.json": PUBLIC,  # the API's shape, no data
}


def _build_table() -> dict[str, Rule]:
    table = dict(SERVER_RULES)
    table |= _under(TRACKING_PREFIX, TRACKING_RULES)
    table |= _under(REGISTRY_PREFIX, REGISTRY_RULES)
    for prefix in MLFLOW_PREFIXES:
        table |= _under(prefix, MLFLOW_RULES)
    for prefix in ARTIFACTS_PREFIXES:
        table |= _under(prefix, MLFLOW_ARTIFACT_RULES)
    table |= UI_RULES
    return table


RULES: dict[str, Rule] = _build_table()
"""Every route's rule, by ``"METHOD /path"`` as the route declares its path."""


# --- lookup and enforcement -----------------------------------------------------------------------


def served_routes(routes: Iterable[BaseRoute]) -> list[BaseRoute]:
    """The routes an app serves, each with the path it is served at (its routers' prefixes included).

    FastAPI from 0.130 or so keeps an included router as one entry of ``app.routes``; its
    ``iter_route_contexts`` lists the routes inside with their full paths. Older FastAPI copies the
    routes into ``app.routes`` themselves.
    """
    try:
        from fastapi.routing import iter_route_contexts
    except ImportError:
        return list(routes)
    return list(iter_route_contexts(list(routes)))  # type: ignore[arg-type]  # each has path and methods


def route_methods(route: BaseRoute) -> frozenset[str]:
    """The methods a route answers, as the table names them (HEAD is GET's; a mount serves GET)."""
    if isinstance(getattr(route, "original_route", route), Mount):
        return frozenset({"GET"})
    methods = getattr(route, "methods", None) or {"GET"}
    return frozenset(m for m in methods if m != "HEAD" or "GET" not in methods)


def route_path(route: BaseRoute) -> str:
    return getattr(route, "path", "") or ""


def _key(method: str, path: str) -> str:
    return f"{'GET' if method == 'HEAD' else method} {path}"


def rule_for(route: BaseRoute | None, method: str) -> Rule | None:
    if route is None:
        return None
    return RULES.get(_key(method, route_path(route)))


def unruled_routes(routes: Iterable[BaseRoute]) -> list[str]:
    """``"METHOD /path"`` of each served route (each of its methods) that has no rule: none may be served."""
    missing = []
    for route in served_routes(routes):
        for method in sorted(route_methods(route)):
            if rule_for(route, method) is None:
                missing.append(f"{method} {route_path(route)}")
    return missing


def _served_path(scope: Scope) -> str | None:
    """The path the matched route is served at, as its rule names it.

    FastAPI 0.130+ puts the route as its router declared it in ``scope["route"]`` (without the
    prefixes it is included under) and the included copy, whose ``path`` has them, under
    ``scope["fastapi"]["effective_route_context"]``; older FastAPI has the full path on the route.
    The route-coverage tests send a request to every route, so a FastAPI that moves these fails them.
    """
    context = scope.get("fastapi", {}).get("effective_route_context")
    path = getattr(context, "path", None)
    if isinstance(path, str) and path:
        return path
    route = scope.get("route")
    return route_path(route) if route is not None else None


async def enforce(rule: Rule | None, connection: HTTPConnection, method: str) -> None:
    """Let the request through, or raise 401 (no identity) or 403 (no rule, too little permission)."""
    if rule is None:
        raise PermissionDeniedError(
            f"{method} {connection.url.path} has no permission rule, and the server refuses every "
            "route it has no rule for"
        )
    if rule.need is Need.PUBLIC:
        return
    identity = await require_identity(connection)  # type: ignore[arg-type]  # reads headers and state only
    if identity.is_admin or rule.need is Need.AUTHENTICATED:
        return
    if rule.need is Need.ADMIN:
        raise PermissionDeniedError(
            f"only an admin may {method} {connection.url.path}; '{identity.name}' is not one"
        )
    assert rule.locate is not None and rule.kind is not None
    state = app_state(connection.app)
    resources = await rule.locate(connection, state)
    need = rule.level
    if rule.raise_to is not None and resources:
        need = max(need, await rule.raise_to(connection, state))
    for resource in resources:
        await _check(identity, resource, need, rule, state)


async def _check(identity: Identity, resource: Resource, need: Level, rule: Rule, state: AppState) -> None:
    have = await run_in_threadpool(
        state.identity.level_for, identity, resource, default=default_level(state.settings)
    )
    if have >= need:
        return
    actions = ACTIONS[resource.kind][need]
    what = next((a for a in actions if rule.allows in a), actions[0])
    has = "no permission" if have == Level.NONE else f"only {have} permission"
    raise PermissionDeniedError(
        f"'{identity.name}' has {has} on {resource}; this needs {need} ({what}): "
        "ask an admin or a manager of it for a grant"
    )


async def authorize(request: Request) -> None:
    """The app-wide dependency: the rule of the route FastAPI matched, enforced before anything else runs."""
    path = _served_path(request.scope)
    rule = RULES.get(_key(request.method, path)) if path is not None else None
    await enforce(rule, request, request.method)


class _Guarded:
    """A non-FastAPI route's own app (a mount, the OpenAPI document) behind its rule."""

    def __init__(self, route: BaseRoute, app: ASGIApp) -> None:
        self.route, self.app = route, app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            # Raised errors reach the app's error handlers, as a route's own errors do.
            await enforce(rule_for(self.route, scope["method"]), Request(scope, receive), scope["method"])
        await self.app(scope, receive, send)


class RouteGuard:
    """Puts :func:`enforce` in front of every route :func:`authorize` does not run for: the app's
    own routes that are not FastAPI routes (the static files' mount, the OpenAPI document).

    It does its work when the app builds its middleware stack (the first request, with every
    route added), so a mount added after ``create_app`` is covered too; requests pass straight
    through it. A non-FastAPI route inside an included router could not be guarded so: the app
    refuses to start with one.
    """

    def __init__(self, app: ASGIApp, router: Router) -> None:
        self.app = app
        top = set(map(id, router.routes))
        for route in router.routes:
            guardable = isinstance(route, Route | Mount) and not isinstance(route, APIRoute)
            if guardable and not isinstance(route.app, _Guarded):
                route.app = _Guarded(route, route.app)
        for served in served_routes(router.routes):
            original = getattr(served, "original_route", served)
            if not isinstance(original, APIRoute) and id(original) not in top:
                raise RuntimeError(
                    f"route {route_path(served)} is not a FastAPI route and is not the app's own"
                )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)
