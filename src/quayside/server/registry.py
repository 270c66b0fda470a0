"""The registry REST router: models, versions (uploaded as tar packages), stages, aliases, policies, reports, history.

Handlers parse, call one method of the registry store, and render. Database work runs
in plain ``def`` handlers (FastAPI's thread pool); the upload is ``async`` so that a
package streams to a temporary file instead of being held in memory. The audit log is
read-only here as everywhere: there is no route that edits or deletes an entry.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Request
from fastapi import Path as PathParam
from fastapi.responses import HTMLResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from quayside.errors import PermissionDeniedError, UsageError
from quayside.identity.model import Identity, Resource, ResourceKind
from quayside.packager.archive import extract_tar
from quayside.registry.artifacts import iter_tar
from quayside.registry.entities import MAX_VERSION
from quayside.registry.policy import PolicyChange
from quayside.registry.rest import API_PREFIX
from quayside.scratch import temporary_directory
from quayside.server.deps import Caller, ReadableModels, Registry, ServerSettings, State, audit_actor
from quayside.server.permissions import creates_model

REGISTRY_PREFIX = API_PREFIX
CHUNK = 1 << 20

router = APIRouter(tags=["registry"])


# Bounded here so the schema says so; below 1 is the store's 400, as for every other caller.
VersionNumber = Annotated[int, PathParam(le=MAX_VERSION)]


class ModelIn(BaseModel):
    name: str
    description: str = ""
    tags: dict[str, str] = Field(default_factory=dict)
    allow_multiple_production: bool = False


class ModelPatch(BaseModel):
    description: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    allow_multiple_production: bool | None = None


class VersionPatch(BaseModel):
    description: str


class TransitionIn(BaseModel):
    stage: str
    reason: str = ""
    actor: str | None = None
    keep_previous: bool = False
    override: bool = False
    """Move past the promotion policy (admins only; needs a reason; marked in the audit log)."""


class AliasIn(BaseModel):
    version: int = Field(le=MAX_VERSION)
    reason: str = ""
    actor: str | None = None
    override: bool = False


class PolicyPatch(BaseModel):
    """The fields to change; one left out keeps its value, ``slo: ""`` clears the SLO."""

    protected_stages: list[str] | None = None
    protected_aliases: list[str] | None = None
    slo: str | None = None
    max_report_age_s: float | None = None
    min_users: int | None = None
    min_duration_s: float | None = None
    require_image: bool | None = None
    budget: str | None = None
    require_build: bool | None = None
    reason: str = ""
    actor: str | None = None


class ReportIn(BaseModel):
    report: dict[str, Any]
    """The JSON document ``quayside loadtest`` writes; a ``verdict`` in it is ignored."""
    html: str
    actor: str | None = None


def _override(caller: Identity, requested: bool) -> bool:
    """Only an admin may move past the promotion policy: anyone else asking is refused, not ignored."""
    if requested and not caller.is_admin:
        raise PermissionDeniedError(
            f"'{caller.name}' is not an admin: only an admin may override the promotion policy; "
            "run the load test instead (quayside promote)"
        )
    return requested


# --- models ----------------------------------------------------------------------------------


@router.post("/models", status_code=201)
def create_model(body: ModelIn, registry: Registry, caller: Caller, state: State) -> dict[str, Any]:
    model = registry.create_model(body.name, body.description, body.tags, body.allow_multiple_production)
    state.identity.grant_creator(caller, Resource(ResourceKind.MODEL, model.name))
    return model.to_dict()


@router.get("/models")
def list_models(registry: Registry, readable: ReadableModels) -> dict[str, Any]:
    return {"models": [m.to_dict() for m in registry.list_models(names=readable)]}


@router.get("/models/{name}")
def get_model(name: str, registry: Registry) -> dict[str, Any]:
    return registry.get_model(name).to_dict()


@router.patch("/models/{name}")
def update_model(name: str, body: ModelPatch, registry: Registry) -> dict[str, Any]:
    model = registry.update_model(
        name,
        description=body.description,
        tags=body.tags,
        allow_multiple_production=body.allow_multiple_production,
    )
    return model.to_dict()


@router.delete("/models/{name}", status_code=204)
def delete_model(
    name: str,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
    state: State,
    actor: str | None = None,
    reason: str = "",
) -> None:
    resolved = audit_actor(caller, settings, actor)
    registry.delete_model(name, actor=resolved, reason=reason)
    # A model registered later under this name starts with no grants of this one's.
    state.identity.forget_resource(Resource(ResourceKind.MODEL, name), actor=resolved)


@router.get("/models/{name}/history")
def history(
    name: str, registry: Registry, version: Annotated[int | None, Query(le=MAX_VERSION)] = None
) -> dict[str, Any]:
    return {"entries": [e.to_dict() for e in registry.history(name, version)]}


# --- versions ---------------------------------------------------------------------------------


@router.post("/models/{name}/versions", status_code=201)
async def register_version(
    name: str,
    request: Request,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
    state: State,
    source: str = "",
    actor: str | None = None,
    source_run_id: str | None = None,
    description: str = "",
    reason: str = "",
    model_description: str | None = None,
    allow_multiple_production: bool | None = None,
    tag: Annotated[list[str] | None, Query()] = None,
) -> dict[str, Any]:
    """Register the package in the request body (a tar of quayside.yaml and its files) as the next version.

    The archive is within QUAYSIDE_MAX_ARTIFACT_BYTES (:class:`~quayside.server.limits.BodyLimits`
    answers 413 for a larger one before this sees it); what it unpacks to is bounded here.
    """
    tags = _parse_tags(tag or [])
    resolved_actor = audit_actor(caller, settings, actor)
    creating = creates_model(request)
    # In the artifact root's scratch folder, so that a crash mid-upload leaves nothing a restart keeps.
    with temporary_directory(settings.artifact_dir) as scratch:
        spool_path = scratch / "package.tar"
        with spool_path.open("wb") as spool:
            async for chunk in request.stream():
                spool.write(chunk)
        package = scratch / "package"

        def unpack_and_register() -> dict[str, Any]:
            with spool_path.open("rb") as stream:
                extract_tar(
                    stream,
                    package,
                    max_bytes=settings.max_artifact_bytes,
                    max_entries=settings.max_archive_entries,
                )
            version = registry.register_version(
                name,
                package,
                actor=resolved_actor,
                source=source or "upload",
                source_run_id=source_run_id,
                description=description,
                reason=reason,
                model_description=model_description,
                tags=tags,
                allow_multiple_production=allow_multiple_production,
            )
            if creating and version.version == 1:
                # The permission check let a signed-in caller through because the model was new.
                state.identity.grant_creator(caller, Resource(ResourceKind.MODEL, name))
            return version.to_dict()

        return await run_in_threadpool(unpack_and_register)


def _parse_tags(pairs: list[str]) -> dict[str, str]:
    tags = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep:
            raise UsageError(f"query parameter 'tag': '{pair}' is not key=value")
        tags[key] = value
    return tags


@router.get("/models/{name}/versions")
def list_versions(name: str, registry: Registry, include_deleted: bool = False) -> dict[str, Any]:
    return {"versions": [v.to_dict() for v in registry.list_versions(name, include_deleted=include_deleted)]}


@router.get("/models/{name}/latest")
def latest_version(name: str, registry: Registry, stage: str | None = None) -> dict[str, Any]:
    return registry.get_latest_version(name, stage).to_dict()


@router.get("/models/{name}/versions/{version}")
def get_version(name: str, version: VersionNumber, registry: Registry) -> dict[str, Any]:
    return registry.get_version(name, version).to_dict()


@router.patch("/models/{name}/versions/{version}")
def update_version(
    name: str, version: VersionNumber, body: VersionPatch, registry: Registry
) -> dict[str, Any]:
    return registry.update_version(name, version, description=body.description).to_dict()


@router.get(
    "/models/{name}/versions/{version}/package",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/x-tar": {}}, "description": "The package as a tar stream."}},
)
def download_package(name: str, version: VersionNumber, registry: Registry) -> StreamingResponse:
    """The version's package as a tar stream (its manifest and listed files)."""
    directory = registry.package_dir(name, version)
    return StreamingResponse(iter_tar(directory, CHUNK), media_type="application/x-tar")


@router.post("/models/{name}/versions/{version}/transition")
def transition(
    name: str,
    version: VersionNumber,
    body: TransitionIn,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
) -> dict[str, Any]:
    moved = registry.transition(
        name,
        version,
        body.stage,
        actor=audit_actor(caller, settings, body.actor),
        reason=body.reason,
        keep_previous=body.keep_previous,
        override=_override(caller, body.override),
    )
    return moved.to_dict()


@router.delete("/models/{name}/versions/{version}")
def delete_version(
    name: str,
    version: VersionNumber,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
    actor: str | None = None,
    reason: str = "",
) -> dict[str, Any]:
    deleted = registry.delete_version(
        name, version, actor=audit_actor(caller, settings, actor), reason=reason
    )
    return deleted.to_dict()


# --- promotion policy and load-test reports ---------------------------------------------------


@router.get("/models/{name}/policy")
def get_policy(name: str, registry: Registry) -> dict[str, Any]:
    """The model's promotion policy: protected stages and aliases, SLO, maximum report age, load shape."""
    return registry.get_policy(name).to_dict()


@router.patch("/models/{name}/policy")
def set_policy(
    name: str, body: PolicyPatch, settings: ServerSettings, registry: Registry, caller: Caller
) -> dict[str, Any]:
    change = PolicyChange.from_dict(body.model_dump(exclude={"reason", "actor"}))
    policy = registry.set_policy(
        name, change, actor=audit_actor(caller, settings, body.actor), reason=body.reason
    )
    return policy.to_dict()


@router.post("/models/{name}/versions/{version}/loadtests", status_code=201)
def add_loadtest(
    name: str,
    version: VersionNumber,
    body: ReportIn,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
) -> dict[str, Any]:
    """Keep a load-test report with the version; the answer carries the registry's own verdict."""
    actor = audit_actor(caller, settings, body.actor)
    return registry.add_loadtest_report(name, version, body.report, body.html, actor=actor).to_dict()


@router.get("/models/{name}/versions/{version}/loadtests")
def list_loadtests(name: str, version: VersionNumber, registry: Registry) -> dict[str, Any]:
    """The version's load-test reports, newest first, judged against the policy in force now."""
    return {"reports": [r.to_dict() for r in registry.loadtest_reports(name, version)]}


@router.get("/models/{name}/versions/{version}/loadtests/{report_id}")
def get_loadtest(name: str, version: VersionNumber, report_id: str, registry: Registry) -> dict[str, Any]:
    """One load-test report: figures per interval and overall, the load shape, and the registry's judgement."""
    return registry.loadtest_report(name, version, report_id)


REPORT_PAGE_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    # The page was rendered by whoever uploaded it: it runs no script and loads nothing here.
    "Content-Security-Policy": "sandbox; default-src 'none'; style-src 'unsafe-inline'; img-src data:",
}


@router.get("/models/{name}/versions/{version}/loadtests/{report_id}/html", response_class=HTMLResponse)
def get_loadtest_html(name: str, version: VersionNumber, report_id: str, registry: Registry) -> HTMLResponse:
    """One load-test report as the self-contained HTML page its load generator rendered (works offline)."""
    # Read whole (pages are bounded by MAX_HTML_BYTES) so that a damaged object is an error, never a page.
    page = registry.loadtest_report_page(name, version, report_id)
    return HTMLResponse(page, headers=REPORT_PAGE_HEADERS)


# --- build records ---------------------------------------------------------------------------


@router.post("/models/{name}/versions/{version}/builds", status_code=201)
def add_build(
    name: str,
    version: VersionNumber,
    document: Annotated[dict[str, Any], Body()],
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
    actor: str | None = None,
) -> dict[str, Any]:
    """Keep the record of an image built of the version (the document ``quayside build`` sends); answered judged."""
    recorded_by = audit_actor(caller, settings, actor)
    return registry.add_build_record(name, version, document, actor=recorded_by).to_dict()


@router.get("/models/{name}/versions/{version}/builds")
def list_builds(name: str, version: VersionNumber, registry: Registry) -> dict[str, Any]:
    """The version's build records, newest first, judged against the policy in force now."""
    return {"builds": [b.to_dict() for b in registry.build_records(name, version)]}


@router.get("/models/{name}/versions/{version}/builds/{build_id}")
def get_build(name: str, version: VersionNumber, build_id: str, registry: Registry) -> dict[str, Any]:
    """One build record: the image, its smoke test and the registry's judgement of it now."""
    return registry.build_record(name, version, build_id).to_dict()


# --- aliases ---------------------------------------------------------------------------------


@router.get("/models/{name}/aliases/{alias}")
def get_alias(name: str, alias: str, registry: Registry) -> dict[str, Any]:
    return registry.get_version_by_alias(name, alias).to_dict()


@router.put("/models/{name}/aliases/{alias}")
def set_alias(
    name: str, alias: str, body: AliasIn, settings: ServerSettings, registry: Registry, caller: Caller
) -> dict[str, Any]:
    moved = registry.set_alias(
        name,
        alias,
        body.version,
        actor=audit_actor(caller, settings, body.actor),
        reason=body.reason,
        override=_override(caller, body.override),
    )
    return moved.to_dict()


@router.delete("/models/{name}/aliases/{alias}", status_code=204)
def delete_alias(
    name: str,
    alias: str,
    settings: ServerSettings,
    registry: Registry,
    caller: Caller,
    actor: str | None = None,
    reason: str = "",
) -> None:
    registry.delete_alias(name, alias, actor=audit_actor(caller, settings, actor), reason=reason)
