"""The tracking REST router: experiments, runs, batch logging, metric history, search, artifacts, models.

Handlers parse, call one method of the tracking store, and render. Database work
runs in plain ``def`` handlers (FastAPI's thread pool); uploads are ``async`` so that
a large body streams into the artifact store without being held in memory, and
downloads stream out of it (:mod:`quayside.server.downloads`, ``Range`` honoured).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi import Path as PathParam
from pydantic import BaseModel, BeforeValidator, Field
from starlette.concurrency import run_in_threadpool

from quayside.errors import AlreadyExistsError, UsageError
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.server.deps import Backend, Caller, ReadableExperiments, State, check_level
from quayside.server.downloads import ArtifactResponse, stream_download
from quayside.server.uploads import RequestBody
from quayside.tracking.artifacts import check_artifact_path
from quayside.tracking.batches import MAX_BATCH_PARAMS, MAX_BATCH_POINTS, MAX_BATCH_TAGS
from quayside.tracking.entities import Metric, decode_float
from quayside.tracking.limits import MAX_EXPERIMENT_ID, MAX_OFFSET, MAX_RUNS_PER_PAGE, MAX_SEARCH_EXPERIMENTS
from quayside.tracking.rest import API_PREFIX
from quayside.tracking.store import TrackingStore

TRACKING_PREFIX = API_PREFIX

router = APIRouter(tags=["tracking"])


ExperimentId = Annotated[int, Field(ge=0, le=MAX_EXPERIMENT_ID)]
"""An experiment id in a body; in a path it is :data:`ExperimentIdPath`."""
ExperimentIdPath = Annotated[int, PathParam(ge=0, le=MAX_EXPERIMENT_ID)]


class ExperimentIn(BaseModel):
    name: str
    exist_ok: bool = False
    """Answer with the existing experiment instead of 409 when the name is taken."""


class ExperimentPatch(BaseModel):
    name: str


class RunIn(BaseModel):
    experiment_id: ExperimentId
    name: str | None = None
    tags: dict[str, str] = Field(default_factory=dict)
    parent_run_id: str | None = None
    start_time: int | None = None


class RunPatch(BaseModel):
    status: str | None = None
    end_time: int | None = None
    exit_code: int | None = None
    name: str | None = None


def refuse_boolean(value: Any) -> Any:
    # JSON's true is not 1.0: a boolean sent as a metric value is a mistake to report.
    if isinstance(value, bool):
        raise ValueError(f"a metric value is a number, not {json.dumps(value)}")
    return value


MetricValue = Annotated[float | str, BeforeValidator(refuse_boolean)]
"""A metric value on the wire: a number, or "NaN", "Infinity", "-Infinity" (JSON has no literals
for them); never a boolean."""


class MetricIn(BaseModel):
    key: str
    value: MetricValue
    """A number, or "NaN", "Infinity", "-Infinity" (JSON has no literals for them)."""
    step: int = 0
    timestamp: int = 0
    """Milliseconds since the epoch; 0 means when the server receives it."""


class BatchIn(BaseModel):
    metrics: list[MetricIn] = Field(default_factory=list, max_length=MAX_BATCH_POINTS)
    params: dict[str, str] = Field(default_factory=dict, max_length=MAX_BATCH_PARAMS)
    tags: dict[str, str] = Field(default_factory=dict, max_length=MAX_BATCH_TAGS)


def repeated(keys: Iterable[str]) -> list[str]:
    """The keys that occur more than once, sorted."""
    return sorted(key for key, count in Counter(keys).items() if count > 1)


class _Pairs(list[tuple[str, Any]]):
    """A JSON object as the list of its (key, value) pairs, repeated keys included."""


async def unique_batch_keys(request: Request) -> None:
    """Refuse a batch that names a param or tag twice: JSON would silently keep the last value.

    The body is already read (and within QUAYSIDE_MAX_REQUEST_BYTES) when this runs; it is
    parsed again keeping every key, which a dict of the model cannot do.
    """
    try:
        pairs = json.loads(await request.body(), object_pairs_hook=_Pairs)
    except ValueError:
        return  # the body model answers for a body that is not JSON
    if not isinstance(pairs, _Pairs):
        return
    for field, items in pairs:
        if field in ("params", "tags") and isinstance(items, _Pairs):
            twice = repeated(key for key, _value in items)
            if twice:
                kind = field[:-1]
                raise UsageError(
                    f"{kind} {', '.join(repr(k) for k in twice[:5])} given more than once in one batch; "
                    f"send each {kind} once"
                )


class SearchIn(BaseModel):
    experiment_ids: list[ExperimentId] | None = Field(None, max_length=MAX_SEARCH_EXPERIMENTS)
    filter: str = ""
    """The filter language's own limits (length, depth, terms) answer 400 ``invalid_filter``."""
    order_by: list[str] = Field(default_factory=list)
    max_results: int = Field(50, ge=1, le=MAX_RUNS_PER_PAGE)
    offset: int = Field(0, ge=0, le=MAX_OFFSET)
    """Runs of the ordered result to skip: page N of size M is offset N*M."""


class ModelIn(BaseModel):
    path: str


# --- experiments -------------------------------------------------------------------------


@router.post("/experiments", status_code=201)
def create_experiment(body: ExperimentIn, backend: Backend, caller: Caller, state: State) -> dict[str, Any]:
    try:
        experiment = backend.create_experiment(body.name)
    except AlreadyExistsError:
        if not body.exist_ok:
            raise
        # Finding an experiment is not creating it: the caller gets no grant, and must be able to read it.
        existing = backend.get_experiment_by_name(body.name)
        check_level(state, caller, Resource(ResourceKind.EXPERIMENT, str(existing.id)), Level.READ)
        return existing.to_dict()
    state.identity.grant_creator(caller, Resource(ResourceKind.EXPERIMENT, str(experiment.id)))
    return experiment.to_dict()


@router.get("/experiments")
def list_experiments(
    backend: Backend, readable: ReadableExperiments, include_deleted: bool = False
) -> dict[str, Any]:
    experiments = backend.list_experiments(include_deleted, readable=readable)
    return {"experiments": [e.to_dict() for e in experiments]}


@router.get("/experiments/lookup")
def get_experiment_by_name(backend: Backend, name: Annotated[str, Query()]) -> dict[str, Any]:
    return backend.get_experiment_by_name(name).to_dict()


@router.get("/experiments/{experiment_id}")
def get_experiment(experiment_id: ExperimentIdPath, backend: Backend) -> dict[str, Any]:
    return backend.get_experiment(experiment_id).to_dict()


@router.patch("/experiments/{experiment_id}")
def rename_experiment(
    experiment_id: ExperimentIdPath, body: ExperimentPatch, backend: Backend
) -> dict[str, Any]:
    return backend.rename_experiment(experiment_id, body.name).to_dict()


@router.delete("/experiments/{experiment_id}")
def delete_experiment(experiment_id: ExperimentIdPath, backend: Backend) -> dict[str, Any]:
    return backend.delete_experiment(experiment_id).to_dict()


# --- runs -------------------------------------------------------------------------------------


@router.post("/runs", status_code=201)
def create_run(body: RunIn, backend: Backend) -> dict[str, Any]:
    run = backend.create_run(body.experiment_id, body.name, body.tags, body.parent_run_id, body.start_time)
    return run.to_dict()


@router.post("/runs/search")
def search_runs(body: SearchIn, backend: Backend, readable: ReadableExperiments) -> dict[str, Any]:
    runs = backend.search_runs(
        body.experiment_ids, body.filter, body.order_by, body.max_results, body.offset, readable=readable
    )
    return {"runs": [r.to_dict() for r in runs]}


@router.get("/runs/{run_id}")
def get_run(run_id: str, backend: Backend) -> dict[str, Any]:
    return backend.get_run(run_id).to_dict()


@router.patch("/runs/{run_id}")
def update_run(run_id: str, body: RunPatch, backend: Backend) -> dict[str, Any]:
    run = backend.update_run(
        run_id, status=body.status, end_time=body.end_time, exit_code=body.exit_code, name=body.name
    )
    return run.to_dict()


@router.delete("/runs/{run_id}")
def delete_run(run_id: str, backend: Backend) -> dict[str, Any]:
    return backend.delete_run(run_id).to_dict()


@router.post("/runs/{run_id}/batch", dependencies=[Depends(unique_batch_keys)])
def log_batch(run_id: str, body: BatchIn, backend: Backend) -> dict[str, Any]:
    """Log metric points, params and tags in one transaction; answered only once committed."""
    metrics = [Metric(m.key, decode_float(m.value), m.step, m.timestamp) for m in body.metrics]
    backend.log_batch(run_id, metrics, body.params, body.tags)
    return {"metrics": len(metrics), "params": len(body.params), "tags": len(body.tags)}


@router.get("/runs/{run_id}/metrics/history")
def metric_history(run_id: str, backend: Backend, key: Annotated[str, Query()]) -> dict[str, Any]:
    return {"metrics": [m.to_dict() for m in backend.get_metric_history(run_id, key)]}


@router.post("/runs/{run_id}/models", status_code=201)
def record_model(run_id: str, body: ModelIn, backend: Backend) -> dict[str, Any]:
    return backend.record_model(run_id, body.path).to_dict()


# --- artifacts -------------------------------------------------------------------------------


@router.get("/runs/{run_id}/artifacts")
def list_artifacts(run_id: str, backend: Backend, path: str = "", recursive: bool = False) -> dict[str, Any]:
    return {"artifacts": [a.to_dict() for a in backend.list_artifacts(run_id, path, recursive=recursive)]}


def artifact_download(
    backend: TrackingStore, run_id: str, path: str, range_header: str | None
) -> ArtifactResponse:
    """An artifact file of a run as a download (never rendered), whole or the range asked for."""
    info = backend.artifact_info(run_id, path)

    def open_object(start: int | None, end: int | None) -> Any:
        return backend.open_artifact(run_id, path, start=start, end=end)

    return stream_download(open_object, info.size, path, range_header)


@router.get("/runs/{run_id}/artifacts/file")
def download_artifact(
    run_id: str, request: Request, backend: Backend, path: Annotated[str, Query()]
) -> ArtifactResponse:
    return artifact_download(backend, run_id, path, request.headers.get("range"))


@router.put("/runs/{run_id}/artifacts/file", status_code=201)
async def upload_artifact(
    run_id: str, request: Request, backend: Backend, path: Annotated[str, Query()]
) -> dict[str, Any]:
    """Stream the request body into the artifact store; the artifact appears only once complete.

    The body is within QUAYSIDE_MAX_ARTIFACT_BYTES: :class:`~quayside.server.limits.BodyLimits`
    answers 413 for a larger one, declared or streamed, before this sees it.
    """
    check_artifact_path(path)
    declared = request.headers.get("content-length")
    if declared is not None and not declared.isdigit():
        raise UsageError("the Content-Length header is not a number")
    size = int(declared) if declared is not None else None
    body = RequestBody(request.stream())
    info = await run_in_threadpool(backend.write_artifact, run_id, path, body, size=size)
    return info.to_dict()
