"""The UI's pages: experiments, runs, a run, a comparison, and the registry's models and versions.

Each handler takes the tracking store or the registry store from the same dependencies
as the REST routers (:mod:`quayside.server.deps`), shapes the data with
:mod:`quayside.server.ui.views`, and renders one template. Database work runs in plain
``def`` handlers (FastAPI's thread pool).
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request, Response

from quayside.errors import FilterError, UsageError
from quayside.identity.model import Identity, Level, Resource, ResourceKind
from quayside.packager.signature import Signature
from quayside.registry.policy import PROTECTABLE_STAGES
from quayside.registry.stages import Stage
from quayside.server.deps import (
    Backend,
    Caller,
    MlflowDatasets,
    MlflowModels,
    ReadableExperiments,
    ReadableModels,
    Registry,
    default_level,
    get_state,
)
from quayside.server.downloads import stream_download
from quayside.server.registry import VersionNumber
from quayside.server.tracking import ExperimentIdPath
from quayside.server.ui import views
from quayside.server.ui.preview import MAX_TEXT_BYTES, image_type, preview_kind, read_preview
from quayside.server.ui.templating import PageRoute, render
from quayside.tracking.entities import Run
from quayside.tracking.store import TrackingStore

router = APIRouter(route_class=PageRoute, include_in_schema=False)


def _json_number(value: float) -> float | None:
    # JSON has no NaN or infinity; a gap in the chart is what they become.
    return value if math.isfinite(value) else None


def _histories(backend: TrackingStore, runs: Iterable[Run]) -> dict[str, dict[str, list[list[Any]]]]:
    """Per run, each metric's points as ``[step, timestamp, value]`` for the charts."""
    return {
        run.id: {
            key: [
                [m.step, m.timestamp, _json_number(m.value)] for m in backend.get_metric_history(run.id, key)
            ]
            for key in run.metrics
        }
        for run in runs
    }


# --- tracking ---------------------------------------------------------------------------------


@router.get("/")
def experiments_page(request: Request, backend: Backend, readable: ReadableExperiments) -> Response:
    experiments = backend.list_experiments(readable=readable)
    activity = backend.experiment_activity()
    return render(request, "experiments.html", experiments=experiments, activity=activity)


@router.get("/experiments/{experiment_id}")
def runs_page(
    request: Request,
    backend: Backend,
    experiment_id: ExperimentIdPath,
    filter_text: Annotated[str, Query(alias="filter")] = "",
    sort: str = "start_time",
    direction: Annotated[str, Query(alias="dir", pattern="^(asc|desc)$")] = "desc",
    page: int = 1,
    per_page: int = views.DEFAULT_PER_PAGE,
    col: Annotated[list[str] | None, Query()] = None,
) -> Response:
    """The experiment's runs, filtered, sorted and paged in the database."""
    experiment = backend.get_experiment(experiment_id)
    keys = backend.run_keys(experiment_id)
    columns = views.choose_columns(col or [], keys)
    ordering = views.order_by(sort, direction == "desc")
    runs: list[Run] = []
    filter_error = None
    try:
        total = backend.count_runs([experiment_id], filter_text)
        position = views.page(page, per_page, total)
        if total:
            runs = backend.search_runs([experiment_id], filter_text, ordering, per_page, position.offset)
    except FilterError as e:
        filter_error = e.message
        position = views.page(1, per_page, 0)
    link = views.url_with(str(request.url.path), list(request.query_params.multi_items()))
    return render(
        request,
        "runs.html",
        status_code=400 if filter_error else 200,
        experiment=experiment,
        runs=runs,
        keys=keys,
        columns=columns,
        selected=[c.ref for c in columns],
        filter_text=filter_text,
        filter_error=filter_error,
        sort=sort,
        direction=direction,
        position=position,
        per_page_choices=views.PER_PAGE_CHOICES,
        sortable=views.SORTABLE_ATTRIBUTES,
        link=link,
    )


@router.get("/runs/{run_id}")
def run_page(
    request: Request,
    backend: Backend,
    registry: Registry,
    mlflow_models: MlflowModels,
    datasets: MlflowDatasets,
    readable_models: ReadableModels,
    run_id: str,
    artifacts: str = "",
) -> Response:
    """A run: params, tags, latest metrics, metric charts, artifacts and the versions registered from it
    (of the models the caller may read)."""
    run = backend.get_run(run_id)
    entries = backend.list_artifacts(run_id, artifacts)
    return render(
        request,
        "run.html",
        run=run,
        experiment=backend.get_experiment(run.experiment_id),
        histories=_histories(backend, [run]),
        artifact_dir=artifacts,
        artifacts=[(entry, preview_kind(entry.path)) for entry in entries],
        versions=registry.versions_from_run(run_id, names=readable_models),
        mlflow_models=mlflow_models.for_run(run_id),
        datasets=datasets.for_run(run_id),
    )


@router.get("/runs/{run_id}/artifacts/view")
def artifact_page(request: Request, backend: Backend, run_id: str, path: Annotated[str, Query()]) -> Response:
    """A preview of one artifact file (text, JSON, CSV or image) with its download link."""
    run = backend.get_run(run_id)
    info = backend.artifact_info(run_id, path)
    return render(
        request,
        "artifact.html",
        run=run,
        path=path,
        size=info.size,
        preview=read_preview(io.BytesIO(_head(backend, run_id, path, info.size)), path),
    )


def _head(backend: TrackingStore, run_id: str, path: str, size: int) -> bytes:
    """What a preview reads of an artifact: the whole file (its digest checked) when it is small."""
    if preview_kind(path) in ("none", "image"):
        return b""
    limit = MAX_TEXT_BYTES + 1
    end = None if size <= limit else limit
    with backend.open_artifact(run_id, path, end=end) as stream:
        data = bytearray()
        while chunk := stream.read(limit - len(data)):
            data += chunk
        return bytes(data)


@router.get("/runs/{run_id}/artifacts/image")
def artifact_image(
    request: Request, backend: Backend, run_id: str, path: Annotated[str, Query()]
) -> Response:
    """An image artifact with its own media type, for the preview's ``<img>``; other files are refused."""
    backend.get_run(run_id)
    media_type = image_type(path)
    if media_type is None:
        raise UsageError(f"artifact '{path}' is not a PNG, JPEG, GIF or WebP image")
    info = backend.artifact_info(run_id, path)

    def open_object(start: int | None, end: int | None) -> Any:
        return backend.open_artifact(run_id, path, start=start, end=end)

    return stream_download(
        open_object, info.size, path, request.headers.get("range"), media_type=media_type, attachment=False
    )


@router.get("/compare")
def compare_page(
    request: Request, backend: Backend, run: Annotated[list[str] | None, Query()] = None
) -> Response:
    """Two to ten runs side by side: params (differences marked) and their metrics overlaid."""
    runs = [backend.get_run(run_id) for run_id in views.check_compare_count(run or [])]
    return render(
        request,
        "compare.html",
        runs=runs,
        params=views.compare(runs, lambda r: r.params),
        metrics=views.compare(runs, lambda r: r.latest_metrics),
        histories=_histories(backend, runs),
        names={r.id: r.name for r in runs},
    )


# --- registry ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelAccess:
    """What the caller may do to a model's versions, so that a page disables what it may not."""

    edit: bool
    manage: bool
    admin: bool = False
    """Admins may override the promotion policy (with a reason, marked in the audit log)."""


def _model_access(request: Request, caller: Identity, name: str) -> ModelAccess:
    if caller.is_admin:
        return ModelAccess(edit=True, manage=True, admin=True)
    state = get_state(request)
    level = state.identity.level_for(
        caller, Resource(ResourceKind.MODEL, name), default=default_level(state.settings)
    )
    return ModelAccess(edit=level >= Level.EDIT, manage=level >= Level.MANAGE)


STAGES = [s.value for s in Stage]


@router.get("/models")
def models_page(request: Request, registry: Registry, readable: ReadableModels) -> Response:
    models = registry.list_models(names=readable)
    versions = {m.name: registry.list_versions(m.name) for m in models}
    return render(request, "models.html", models=models, versions=versions)


@router.get("/models/{name}")
def model_page(request: Request, registry: Registry, caller: Caller, name: str) -> Response:
    """A model's versions (stage, aliases, lineage), its promotion policy, the controls to move versions
    (a stage or alias the policy closes to a version is disabled, with the registry's reason), and its audit log."""
    versions = registry.list_versions(name)
    choices = {
        v.version: views.stage_choices(v.stage, STAGES, registry.blocked_moves(name, v.version))
        for v in versions
    }
    return render(
        request,
        "model.html",
        model=registry.get_model(name),
        versions=versions,
        choices=choices,
        policy=views.policy_facts(registry.get_policy(name)),
        protectable=[s.value for s in PROTECTABLE_STAGES],
        history=list(reversed(registry.history(name))),
        access=_model_access(request, caller, name),
        promote_command=views.promote_command,
    )


@router.get("/models/{name}/versions/{version}")
def version_page(
    request: Request, registry: Registry, caller: Caller, name: str, version: VersionNumber
) -> Response:
    """One version: its package, lineage, history, the policy in force and its load-test reports judged
    against it (the chart is drawn from the API), and the protected moves it cannot make yet, with why."""
    found = registry.get_version(name, version)
    blocked = {} if found.deleted else registry.blocked_moves(name, version)
    return render(
        request,
        "version.html",
        model=registry.get_model(name),
        mv=found,
        history=list(reversed(registry.history(name, version))),
        reports=registry.loadtest_reports(name, version),
        builds=registry.build_records(name, version),
        build_size_mb=views.build_size_mb,
        policy=views.policy_facts(registry.get_policy(name)),
        signature=Signature.from_dict(found.signature),
        choices=views.stage_choices(found.stage, STAGES, blocked),
        alias_refusals=views.alias_refusals(blocked, found.aliases),
        access=_model_access(request, caller, name),
        promote_command=views.promote_command,
        describe_tested=views.describe_tested,
    )
