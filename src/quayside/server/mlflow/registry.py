"""MLflow's model-registry routes: registered models, model versions, tags, aliases, stages and download URIs.

``mlflow.register_model``, ``MlflowClient().set_registered_model_alias``,
``transition_model_version_stage``, ``search_model_versions`` ... land in Quayside's
registry (:class:`~quayside.registry.store.RegistryStore`), so the same versions, stages,
aliases and audit log show in ``quayside registry`` and the web UI, and the registry's
promotion policy holds for MLflow's calls as for any other: moving into a protected stage
or a protected alias without a passing load test is refused (MLflow's error shape,
Quayside's message naming ``quayside promote``) and changes nothing.

A version is created from an MLflow source (``runs:/<run id>/<path>``,
``models:/<logged model id>``, ``mlflow-artifacts:/<run id>/<path>``) by the composition
layer (:mod:`quayside.compose.mlflow_registry`); the caller must be able to read the run
it comes from, which the route checks since the route table knows only the model.
Stages are translated by :mod:`~quayside.server.mlflow.stages`, searches parsed by
:mod:`~quayside.server.mlflow.registry_search`.

Where Quayside's registry answers differently from MLflow's:

- versions are ``READY`` as soon as the create call answers (registration is whole or nothing);
- a deleted version is gone for MLflow (404), though Quayside keeps its record and number;
- stage moves follow Quayside's transitions table (``None`` → ``Staging`` → ``Production``;
  see :mod:`~quayside.server.mlflow.stages` for ``archive_existing_versions``);
- a model or version in production is not deleted (archive it first), as everywhere in Quayside;
- a renamed model's audit history before the rename stays under its old name, and each name's
  history ends (or starts) with the ``rename`` entry naming the other;
- ``run_link`` and ``deployment_job_id`` are not kept.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Annotated, Any

from fastapi import APIRouter, Query

from quayside.compose.mlflow_registry import mlflow_download_uri, register_mlflow_version, resolve_source
from quayside.errors import NotFoundError, UsageError
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.registry.entities import ModelVersion
from quayside.registry.store import RegistryStore
from quayside.server.deps import (
    Caller,
    ReadableModels,
    Registry,
    ServerSettings,
    State,
    audit_actor,
    check_level,
)
from quayside.server.mlflow.errors import MlflowRoute
from quayside.server.mlflow.messages import page_offset, pairs
from quayside.server.mlflow.registry_messages import (
    DEFAULT_MODELS_PER_PAGE,
    DEFAULT_VERSIONS_PER_PAGE,
    MAX_MODELS_PER_PAGE,
    MAX_VERSIONS_PER_PAGE,
    AliasRef,
    AliasSet,
    LatestVersions,
    ModelCreate,
    ModelRef,
    ModelRename,
    ModelTag,
    ModelTagRef,
    ModelUpdate,
    Transition,
    VersionCreate,
    VersionRef,
    VersionTag,
    VersionTagRef,
    VersionUpdate,
    latest_per_stage,
    model_attributes,
    model_version_out,
    page_size,
    registered_model_out,
    version_attributes,
    version_number,
)
from quayside.server.mlflow.registry_search import (
    MODEL_VERSIONS,
    REGISTERED_MODELS,
    ordered,
    parse_filter,
    parse_order_by,
)
from quayside.server.mlflow.stages import keep_previous, to_quayside

router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)

MODEL = ResourceKind.MODEL
Repeated = Annotated[list[str] | None, Query()]


def _live(registry: RegistryStore, name: str, version: str) -> ModelVersion:
    """A version MLflow can see: Quayside keeps deleted versions, MLflow does not."""
    found = registry.get_version(name, version_number(version))
    if found.deleted:
        raise NotFoundError(f"model '{name}' version {found.version} was deleted")
    return found


def _registered_model(registry: RegistryStore, name: str) -> dict[str, Any]:
    return registered_model_out(registry.get_model(name), registry.list_versions(name))


def _narrowed(readable: Collection[str] | None, name: str | None) -> Collection[str] | None:
    """The models a search lists: those the caller may read, only the one its ``name = '...'`` names."""
    if name is None:
        return readable
    return {name} if readable is None or name in readable else set()


def _page(found: Sequence[Any], offset: int, limit: int) -> tuple[Sequence[Any], dict[str, str]]:
    token = {"next_page_token": str(offset + limit)} if offset + limit < len(found) else {}
    return found[offset : offset + limit], token


# --- registered models ----------------------------------------------------------------------


@router.post("/registered-models/create")
def create_registered_model(
    body: ModelCreate, registry: Registry, caller: Caller, state: State
) -> dict[str, Any]:
    model = registry.create_model(body.name, body.description, pairs(body.tags))
    state.identity.grant_creator(caller, Resource(MODEL, model.name))
    return {"registered_model": registered_model_out(model)}


@router.get("/registered-models/get")
def get_registered_model(name: str, registry: Registry) -> dict[str, Any]:
    return {"registered_model": _registered_model(registry, name)}


@router.post("/registered-models/rename")
def rename_registered_model(
    body: ModelRename, registry: Registry, caller: Caller, settings: ServerSettings, state: State
) -> dict[str, Any]:
    actor = audit_actor(caller, settings)
    model = registry.rename_model(body.name, body.new_name, actor=actor)
    if model.name != body.name:
        state.identity.rename_resource(Resource(MODEL, body.name), model.name, actor=actor)
    return {"registered_model": _registered_model(registry, model.name)}


@router.patch("/registered-models/update")
def update_registered_model(body: ModelUpdate, registry: Registry) -> dict[str, Any]:
    if body.description is not None:
        registry.update_model(body.name, description=body.description)
    return {"registered_model": _registered_model(registry, body.name)}


@router.delete("/registered-models/delete")
def delete_registered_model(
    body: ModelRef, registry: Registry, caller: Caller, settings: ServerSettings, state: State
) -> dict[str, Any]:
    actor = audit_actor(caller, settings)
    registry.delete_model(body.name, actor=actor)
    # A model registered later under this name starts with no grants of this one's.
    state.identity.forget_resource(Resource(MODEL, body.name), actor=actor)
    return {}


@router.get("/registered-models/search")
def search_registered_models(
    registry: Registry,
    readable: ReadableModels,
    filter: str = "",
    max_results: int = DEFAULT_MODELS_PER_PAGE,
    order_by: Repeated = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    limit = page_size(max_results, MAX_MODELS_PER_PAGE)
    offset = page_offset(page_token)
    matches = parse_filter(filter, REGISTERED_MODELS)
    keys = parse_order_by(order_by, REGISTERED_MODELS)
    models = registry.list_models(names=_narrowed(readable, matches.equal_to("name")))
    found = ordered(
        [m for m in models if matches.matches(model_attributes(m), m.tags)], keys, model_attributes
    )
    page, token = _page(found, offset, limit)
    return {"registered_models": [_registered_model(registry, m.name) for m in page], **token}


def _latest(registry: RegistryStore, name: str, stages: Sequence[str]) -> dict[str, Any]:
    versions = latest_per_stage(registry.list_versions(name), stages)
    return {"model_versions": [model_version_out(v) for v in versions]}


@router.post("/registered-models/get-latest-versions")
def get_latest_versions(body: LatestVersions, registry: Registry) -> dict[str, Any]:
    return _latest(registry, body.name, body.stages)


@router.get("/registered-models/get-latest-versions")
def get_latest_versions_by_query(name: str, registry: Registry, stages: Repeated = None) -> dict[str, Any]:
    return _latest(registry, name, stages or [])


@router.post("/registered-models/set-tag")
def set_registered_model_tag(body: ModelTag, registry: Registry) -> dict[str, Any]:
    registry.update_model(body.name, tags={body.key: body.value})
    return {}


@router.delete("/registered-models/delete-tag")
def delete_registered_model_tag(body: ModelTagRef, registry: Registry) -> dict[str, Any]:
    registry.delete_model_tag(body.name, body.key)
    return {}


@router.post("/registered-models/alias")
def set_registered_model_alias(
    body: AliasSet, registry: Registry, caller: Caller, settings: ServerSettings
) -> dict[str, Any]:
    registry.set_alias(
        body.name, body.alias, version_number(body.version), actor=audit_actor(caller, settings)
    )
    return {}


@router.delete("/registered-models/alias")
def delete_registered_model_alias(
    body: AliasRef, registry: Registry, caller: Caller, settings: ServerSettings
) -> dict[str, Any]:
    registry.delete_alias(body.name, body.alias, actor=audit_actor(caller, settings))
    return {}


@router.get("/registered-models/alias")
def get_model_version_by_alias(name: str, alias: str, registry: Registry) -> dict[str, Any]:
    return {"model_version": model_version_out(registry.get_version_by_alias(name, alias))}


# --- model versions -------------------------------------------------------------------------


@router.post("/model-versions/create")
def create_model_version(
    body: VersionCreate, registry: Registry, caller: Caller, settings: ServerSettings, state: State
) -> dict[str, Any]:
    registry.get_model(body.name)  # as in MLflow: versions are created for a registered model
    source = body.source or (f"models:/{body.model_id}" if body.model_id else "")
    if not source:
        raise UsageError("missing value for required parameter 'source'")
    # The version's files are the run's: registering them is reading them.
    run_id = resolve_source(state.tracking, source, body.run_id or None).run_id
    experiment = Resource(ResourceKind.EXPERIMENT, str(state.tracking.run_experiment_id(run_id)))
    check_level(state, caller, experiment, Level.READ)
    version = register_mlflow_version(
        state.tracking,
        registry,
        body.name,
        source,
        run_id=body.run_id or None,
        description=body.description,
        tags=pairs(body.tags),
        actor=audit_actor(caller, settings),
    )
    return {"model_version": model_version_out(version)}


@router.get("/model-versions/get")
def get_model_version(name: str, version: str, registry: Registry) -> dict[str, Any]:
    return {"model_version": model_version_out(_live(registry, name, version))}


@router.patch("/model-versions/update")
def update_model_version(body: VersionUpdate, registry: Registry) -> dict[str, Any]:
    if body.description is None:
        return {"model_version": model_version_out(_live(registry, body.name, body.version))}
    updated = registry.update_version(body.name, body.number, description=body.description)
    return {"model_version": model_version_out(updated)}


@router.delete("/model-versions/delete")
def delete_model_version(
    body: VersionRef, registry: Registry, caller: Caller, settings: ServerSettings
) -> dict[str, Any]:
    registry.delete_version(body.name, body.number, actor=audit_actor(caller, settings))
    return {}


@router.get("/model-versions/search")
def search_model_versions(
    registry: Registry,
    readable: ReadableModels,
    filter: str = "",
    max_results: int = DEFAULT_VERSIONS_PER_PAGE,
    order_by: Repeated = None,
    page_token: str | None = None,
) -> dict[str, Any]:
    limit = page_size(max_results, MAX_VERSIONS_PER_PAGE)
    offset = page_offset(page_token)
    matches = parse_filter(filter, MODEL_VERSIONS)
    keys = parse_order_by(order_by, MODEL_VERSIONS)
    names = _narrowed(readable, matches.equal_to("name"))
    run_id = matches.equal_to("run_id")
    if run_id is not None:
        versions = registry.versions_from_run(run_id, names=names)
    else:
        versions = [v for m in registry.list_models(names=names) for v in registry.list_versions(m.name)]
    found = ordered(
        [v for v in versions if matches.matches(version_attributes(v), v.tags)], keys, version_attributes
    )
    page, token = _page(found, offset, limit)
    return {"model_versions": [model_version_out(v) for v in page], **token}


@router.post("/model-versions/set-tag")
def set_model_version_tag(body: VersionTag, registry: Registry) -> dict[str, Any]:
    registry.set_version_tag(body.name, body.number, body.key, body.value)
    return {}


@router.delete("/model-versions/delete-tag")
def delete_model_version_tag(body: VersionTagRef, registry: Registry) -> dict[str, Any]:
    registry.delete_version_tag(body.name, body.number, body.key)
    return {}


@router.post("/model-versions/transition-stage")
def transition_model_version_stage(
    body: Transition, registry: Registry, caller: Caller, settings: ServerSettings
) -> dict[str, Any]:
    target = to_quayside(body.stage)
    model = registry.get_model(body.name)
    keep = keep_previous(
        target, body.archive_existing_versions, allow_multiple_production=model.allow_multiple_production
    )
    moved = registry.transition(
        body.name, body.number, target.value, actor=audit_actor(caller, settings), keep_previous=keep
    )
    return {"model_version": model_version_out(moved)}


@router.get("/model-versions/get-download-uri")
def get_model_version_download_uri(name: str, version: str, registry: Registry) -> dict[str, Any]:
    return {"artifact_uri": mlflow_download_uri(_live(registry, name, version))}
