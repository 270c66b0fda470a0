"""The subset of MLflow's REST API that the ``mlflow`` Python client uses for tracking.

With ``MLFLOW_TRACKING_URI`` pointing at ``quayside server``, unchanged
``mlflow.set_experiment / start_run / log_param(s) / log_metric(s) / set_tag /
log_artifact`` code logs into Quayside's store. Each route parses MLflow's request
shape, calls one method of the tracking backend, and renders MLflow's response
shape; errors are MLflow's ``{"error_code", "message"}`` bodies, which the client
turns into ``MlflowException``s.

How MLflow's terms map onto Quayside's:

- experiment ids are Quayside's integer ids as strings; MLflow's default experiment
  ``"0"`` is Quayside's default experiment (``QUAYSIDE_EXPERIMENT``);
- run ids, millisecond timestamps, statuses and lifecycle stages (``active``/``deleted``)
  are the same (``SCHEDULED`` becomes ``RUNNING``); the ``mlflow.parentRunId`` tag sets
  the parent run, and ``mlflow.runName`` is the run's name;
- a run's ``artifact_uri`` is ``mlflow-artifacts:/<run id>``, so the client uploads and
  downloads through the proxied artifact routes below, into the run's artifact directory.

Endpoints not listed here answer ``ENDPOINT_NOT_FOUND`` naming the endpoint.
"""

from __future__ import annotations

import posixpath
import re
from collections.abc import Callable, Coroutine, Mapping, Sequence
from typing import TYPE_CHECKING, Annotated, Any

from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from quayside.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    PayloadTooLargeError,
    QuaysideError,
    UnavailableError,
    UsageError,
)
from quayside.server.errors import describe_validation_error, public_error
from quayside.server.tracking import Backend, MetricValue, repeated, upload_artifact
from quayside.tracking.entities import Experiment, Metric, Run, decode_float, encode_float
from quayside.tracking.limits import MAX_EXPERIMENT_ID, MAX_OFFSET, MAX_SEARCH_EXPERIMENTS, MAX_SEARCH_RESULTS
from quayside.tracking.local import LocalBackend
from quayside.tracking.mlflow_datasets import DatasetInput, MlflowDatasetStore
from quayside.tracking.mlflow_models import MlflowModelStore
from quayside.tracking.search import check_source

if TYPE_CHECKING:
    from sqlalchemy.orm import Session

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")
DEFAULT_EXPERIMENT_ID = "0"
PARENT_TAG, NAME_TAG, USER_TAG = "mlflow.parentRunId", "mlflow.runName", "mlflow.user"
# MLflow's server refuses a larger max_results (SEARCH_MAX_RESULTS_THRESHOLD); Quayside pages below it.
MLFLOW_MAX_RESULTS = 50_000
MLFLOW_DEFAULT_MAX_RESULTS = 1_000

# (error class, MLflow error code, HTTP status); the first match along the MRO wins.
# MLflow's client retries 5xx answers for minutes, so only true server faults are 5xx.
_ERROR_CODES: tuple[tuple[type[QuaysideError], str, int], ...] = (
    (NotFoundError, "RESOURCE_DOES_NOT_EXIST", 404),
    (AlreadyExistsError, "RESOURCE_ALREADY_EXISTS", 400),
    (InvalidStateError, "INVALID_PARAMETER_VALUE", 400),
    (PayloadTooLargeError, "INVALID_PARAMETER_VALUE", 413),
    (UsageError, "INVALID_PARAMETER_VALUE", 400),
    (UnavailableError, "TEMPORARILY_UNAVAILABLE", 503),
)


def mlflow_error(error: QuaysideError, request: Request | None = None) -> JSONResponse:
    """A Quayside error as MLflow's error body and status (logged, made public as the server's handler does)."""
    public = public_error(request, error)
    for cls in type(error).__mro__:
        for known, code, status in _ERROR_CODES:
            if cls is known:
                return _error(status, code, public.message, public.headers)
    if error.http_status < 500:
        return _error(error.http_status, "BAD_REQUEST", public.message, public.headers)
    return _error(500, "INTERNAL_ERROR", public.message, public.headers)


def _error(status: int, code: str, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error_code": code, "message": message}, status_code=status, headers=headers)


class MlflowRoute(APIRoute):
    """A route whose Quayside and validation errors are answered in MLflow's error shape."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(request)
            except QuaysideError as e:
                return mlflow_error(e, request)
            except RequestValidationError as e:
                return _error(400, "INVALID_PARAMETER_VALUE", describe_validation_error(e))

        return route


router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)
artifacts_router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


def get_mlflow_models(request: Request) -> MlflowModelStore:
    return request.app.state.mlflow_models


def get_mlflow_datasets(request: Request) -> MlflowDatasetStore:
    return request.app.state.mlflow_datasets


MlflowModels = Annotated[MlflowModelStore, Depends(get_mlflow_models)]
MlflowDatasets = Annotated[MlflowDatasetStore, Depends(get_mlflow_datasets)]


# --- translation ------------------------------------------------------------------------


def artifact_uri(run_id: str) -> str:
    return f"mlflow-artifacts:/{run_id}"


def experiment_out(experiment: Experiment) -> dict[str, Any]:
    return {
        "experiment_id": str(experiment.id),
        "name": experiment.name,
        "artifact_location": "mlflow-artifacts:/",
        "lifecycle_stage": experiment.lifecycle,
        "creation_time": experiment.created_at,
        "last_update_time": experiment.created_at,
        "tags": [],
    }


def metric_out(metric: Metric) -> dict[str, Any]:
    return {
        "key": metric.key,
        "value": encode_float(metric.value),
        "timestamp": metric.timestamp,
        "step": metric.step,
    }


def run_info_out(run: Run) -> dict[str, Any]:
    info: dict[str, Any] = {
        "run_id": run.id,
        "run_uuid": run.id,
        "run_name": run.name,
        "experiment_id": str(run.experiment_id),
        "user_id": run.tags.get(USER_TAG, ""),
        "status": run.status.value,
        "start_time": run.start_time,
        "artifact_uri": artifact_uri(run.id),
        "lifecycle_stage": run.lifecycle,
    }
    if run.end_time is not None:
        info["end_time"] = run.end_time
    return info


def run_out(run: Run) -> dict[str, Any]:
    """A run as MLflow's ``Run`` message: info, and data with each metric's latest point."""
    tags = dict(run.tags) | {NAME_TAG: run.name}
    if run.parent_run_id is not None:
        tags[PARENT_TAG] = run.parent_run_id
    return {
        "info": run_info_out(run),
        "data": {
            "metrics": [metric_out(m) for m in run.metrics.values()],
            "params": [{"key": k, "value": v} for k, v in run.params.items()],
            "tags": key_values(tags),
        },
        "inputs": {},
    }


def dataset_input_out(item: DatasetInput) -> dict[str, Any]:
    dataset = {
        "name": item.name,
        "digest": item.digest,
        "source_type": item.source_type,
        "source": item.source,
    }
    if item.schema:
        dataset["schema"] = item.schema
    if item.profile:
        dataset["profile"] = item.profile
    return {"tags": key_values(item.tags or {}), "dataset": dataset}


def run_status(status: str) -> str:
    """MLflow's run status as Quayside's: the same words, and SCHEDULED is RUNNING."""
    return "RUNNING" if status.upper() == "SCHEDULED" else status


def experiment_id_of(request: Request, value: str) -> int:
    """Quayside's id for an MLflow experiment id; ``"0"`` is the default experiment."""
    if value == DEFAULT_EXPERIMENT_ID:
        backend: LocalBackend = request.app.state.tracking
        return backend.get_or_create_experiment(request.app.state.settings.experiment).id
    if _DECIMAL.fullmatch(value) is None or int(value) > MAX_EXPERIMENT_ID:
        raise NotFoundError(f"no experiment with id '{_excerpt(value)}'")
    return int(value)


# str.isdigit() also takes '²' and other digits int() refuses; ids and page tokens are ASCII decimals.
_DECIMAL = re.compile("[0-9]{1,19}")


def _excerpt(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def page_size(max_results: int) -> int:
    """How many to answer for ``max_results``: refused outside MLflow's 1 to 50,000, at most Quayside's page.

    A page shorter than asked is still a page: the client follows ``next_page_token``.
    """
    if not 1 <= max_results <= MLFLOW_MAX_RESULTS:
        raise UsageError(
            f"Invalid value for request parameter max_results: it must be a positive integer of at most "
            f"{MLFLOW_MAX_RESULTS}, but got {max_results}"
        )
    return min(max_results, MAX_SEARCH_RESULTS)


# --- request bodies --------------------------------------------------------------------------


class KeyValue(BaseModel):
    key: str
    value: str = ""


class MetricIn(BaseModel):
    key: str
    value: MetricValue
    timestamp: int = Field(0, ge=0)
    step: int = 0
    model_id: str | None = None

    def to_metric(self) -> Metric:
        return Metric(self.key, decode_float(self.value), self.step, self.timestamp)


class RunRef(BaseModel):
    run_id: str | None = None
    run_uuid: str | None = None

    @property
    def id(self) -> str:
        run_id = self.run_id or self.run_uuid
        if not run_id:
            raise UsageError("missing value for required parameter 'run_id'")
        return run_id


class ExperimentCreate(BaseModel):
    name: str
    artifact_location: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)


class ExperimentRef(BaseModel):
    experiment_id: str


class ExperimentUpdate(ExperimentRef):
    new_name: str


class ExperimentSearch(BaseModel):
    view_type: str = "ACTIVE_ONLY"
    max_results: int = MLFLOW_DEFAULT_MAX_RESULTS
    filter: str = ""
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


class RunCreate(BaseModel):
    experiment_id: str = DEFAULT_EXPERIMENT_ID
    user_id: str | None = None
    start_time: int | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_name: str | None = None


class RunUpdate(RunRef):
    status: str | None = None
    end_time: int | None = None
    run_name: str | None = None


class LogMetricIn(RunRef, MetricIn):
    pass


class LogParamIn(RunRef, KeyValue):
    pass


class SetTagIn(RunRef, KeyValue):
    pass


class LogBatchIn(RunRef):
    metrics: list[MetricIn] = Field(default_factory=list)
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class DatasetIn(BaseModel):
    name: str
    digest: str
    source_type: str = ""
    source: str = ""
    schema_: str = Field("", alias="schema")
    profile: str = ""


class DatasetInputIn(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list)
    dataset: DatasetIn


class LogInputsIn(RunRef):
    datasets: list[DatasetInputIn] = Field(default_factory=list)
    models: list[dict[str, Any]] = Field(default_factory=list)


class RunSearch(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list, max_length=MAX_SEARCH_EXPERIMENTS)
    filter: str = ""
    run_view_type: str = "ACTIVE_ONLY"
    max_results: int = MLFLOW_DEFAULT_MAX_RESULTS
    order_by: list[str] = Field(default_factory=list)
    page_token: str | None = None


def pairs(items: list[KeyValue]) -> dict[str, str]:
    return {item.key: item.value for item in items}


def key_values(values: Mapping[str, str]) -> list[dict[str, str]]:
    """MLflow's list of ``{"key", "value"}`` (params, tags), sorted by key; the inverse of :func:`pairs`."""
    return [{"key": k, "value": v} for k, v in sorted(values.items())]


# --- experiments ----------------------------------------------------------------------------


@router.post("/experiments/create")
def create_experiment(body: ExperimentCreate, backend: Backend) -> dict[str, Any]:
    if body.tags:
        raise UsageError("Quayside experiments have no tags; set tags on runs instead")
    return {"experiment_id": str(backend.create_experiment(body.name).id)}


@router.get("/experiments/get")
def get_experiment(request: Request, backend: Backend, experiment_id: str) -> dict[str, Any]:
    return {"experiment": experiment_out(backend.get_experiment(experiment_id_of(request, experiment_id)))}


@router.get("/experiments/get-by-name")
def get_experiment_by_name(backend: Backend, experiment_name: str) -> dict[str, Any]:
    return {"experiment": experiment_out(backend.get_experiment_by_name(experiment_name))}


@router.post("/experiments/search")
def search_experiments(body: ExperimentSearch, backend: Backend) -> dict[str, Any]:
    if body.view_type not in ("ACTIVE_ONLY", "ALL", "DELETED_ONLY"):
        raise UsageError(f"view_type must be ACTIVE_ONLY, DELETED_ONLY or ALL, not '{body.view_type}'")
    experiments = backend.list_experiments(include_deleted=body.view_type != "ACTIVE_ONLY")
    if body.view_type == "DELETED_ONLY":
        experiments = [e for e in experiments if e.lifecycle == "deleted"]
    limit = page_size(body.max_results)
    offset = page_offset(body.page_token)
    matches = experiment_name_filter(body.filter)
    found = [e for e in experiments if matches(e.name)]
    answer: dict[str, Any] = {"experiments": [experiment_out(e) for e in found[offset : offset + limit]]}
    if offset + limit < len(found):
        answer["next_page_token"] = str(offset + limit)
    return answer


_NAME_FILTER = re.compile(
    r"^\s*(?:attributes?\.)?name\s*(=|!=|like|ilike)\s*(['\"])(.*)\2\s*$", re.IGNORECASE | re.DOTALL
)


def experiment_name_filter(filter_string: str) -> Callable[[str], bool]:
    """A predicate for the one experiment filter Quayside reads: ``name = | != | LIKE | ILIKE 'value'``."""
    if not filter_string.strip():
        return lambda _name: True
    check_source(filter_string, "experiment filter")
    match = _NAME_FILTER.match(filter_string)
    if match is None:
        raise UsageError(
            f"experiment filter {_excerpt(filter_string)!r} is not supported: Quayside reads only "
            "\"name = 'x'\", \"name != 'x'\", \"name LIKE 'x%'\" and \"name ILIKE 'x%'\""
        )
    op, value = match.group(1).lower(), match.group(3)
    if op == "=":
        return lambda name: name == value
    if op == "!=":
        return lambda name: name != value
    return like_matcher(value, ignore_case=op == "ilike")


def like_matcher(pattern: str, *, ignore_case: bool = False) -> Callable[[str], bool]:
    """SQL ``LIKE`` (``%`` any run, ``_`` one character) in time linear in pattern times name.

    A regular expression of ``.*`` pieces backtracks: ``'%a%a%a%a%a%b'`` against a long
    name of a's takes time exponential in the pattern. Matching the fixed pieces between
    ``%`` leftmost first is exact and cannot backtrack.
    """
    fold: Callable[[str], str] = str.casefold if ignore_case else str
    pieces = [fold(piece) for piece in pattern.split("%")]

    def piece_at(name: str, piece: str, start: int) -> bool:
        window = name[start : start + len(piece)]
        return len(window) == len(piece) and all(p in ("_", c) for p, c in zip(piece, window, strict=True))

    def matches(name: str) -> bool:
        name = fold(name)
        if len(pieces) == 1:
            return len(name) == len(pieces[0]) and piece_at(name, pieces[0], 0)
        first, *middle, last = pieces
        end = len(name) - len(last)
        if end < len(first) or not piece_at(name, first, 0) or not piece_at(name, last, end):
            return False
        position = len(first)
        for piece in middle:
            while position + len(piece) <= end and not piece_at(name, piece, position):
                position += 1
            if position + len(piece) > end:
                return False
            position += len(piece)
        return True

    return matches


@router.post("/experiments/update")
def rename_experiment(body: ExperimentUpdate, request: Request, backend: Backend) -> dict[str, Any]:
    backend.rename_experiment(experiment_id_of(request, body.experiment_id), body.new_name)
    return {}


@router.post("/experiments/delete")
def delete_experiment(body: ExperimentRef, request: Request, backend: Backend) -> dict[str, Any]:
    backend.delete_experiment(experiment_id_of(request, body.experiment_id))
    return {}


# --- runs -----------------------------------------------------------------------------------


@router.post("/runs/create")
def create_run(body: RunCreate, request: Request, backend: Backend) -> dict[str, Any]:
    tags = pairs(body.tags)
    if body.user_id and USER_TAG not in tags:
        tags[USER_TAG] = body.user_id
    name = body.run_name or tags.pop(NAME_TAG, None)
    tags.pop(NAME_TAG, None)  # the run's name is the tag; storing both would let them drift
    parent = tags.pop(PARENT_TAG, None)
    run = backend.create_run(
        experiment_id_of(request, body.experiment_id), name or None, tags, parent, body.start_time
    )
    return {"run": run_out(run)}


@router.get("/runs/get")
def get_run(
    backend: Backend,
    models: MlflowModels,
    datasets: MlflowDatasets,
    run_id: str | None = None,
    run_uuid: str | None = None,
) -> dict[str, Any]:
    run = backend.get_run(RunRef(run_id=run_id, run_uuid=run_uuid).id)
    inputs = [dataset_input_out(d) for d in datasets.for_run(run.id)]
    outputs = [{"model_id": m.id, "step": 0} for m in models.for_run(run.id)]
    return {
        "run": run_out(run) | {"inputs": {"dataset_inputs": inputs}, "outputs": {"model_outputs": outputs}}
    }


@router.post("/runs/update")
def update_run(body: RunUpdate, backend: Backend) -> dict[str, Any]:
    run = backend.update_run(
        body.id,
        status=run_status(body.status) if body.status else None,
        end_time=body.end_time,
        name=body.run_name or None,
    )
    return {"run_info": run_info_out(run)}


@router.post("/runs/delete")
def delete_run(body: RunRef, backend: Backend) -> dict[str, Any]:
    backend.delete_run(body.id)
    return {}


@router.post("/runs/search")
def search_runs(body: RunSearch, request: Request, backend: Backend) -> dict[str, Any]:
    if body.run_view_type != "ACTIVE_ONLY":
        raise UsageError(
            f"run_view_type {body.run_view_type} is not supported: Quayside searches active runs only"
        )
    limit = page_size(body.max_results)
    offset = page_offset(body.page_token)
    ids = [experiment_id_of(request, e) for e in body.experiment_ids]
    runs = backend.search_runs(ids, body.filter, body.order_by, limit, offset)
    answer: dict[str, Any] = {"runs": [run_out(r) for r in runs]}
    if len(runs) == limit:
        answer["next_page_token"] = str(offset + limit)
    return answer


def page_offset(page_token: str | None) -> int:
    """The results a page token skips: Quayside's tokens are offsets into the ordered result."""
    if not page_token:
        return 0
    if _DECIMAL.fullmatch(page_token) is None or int(page_token) > MAX_OFFSET:
        raise UsageError(f"page_token {_excerpt(page_token)!r} was not given out by this server")
    return int(page_token)


# --- logging --------------------------------------------------------------------------------


# MLflow's server limits on one LogBatch request (mlflow.utils.validation), answered as it does.
MAX_BATCH_BODY_BYTES = 1_000_000
MAX_BATCH_METRICS = 1000
MAX_BATCH_PARAMS = MAX_BATCH_TAGS = 100
MAX_BATCH_ENTITIES = 1000


async def batch_body_size(request: Request) -> None:
    """MLflow's 1 MB cap on a LogBatch body (the server's own body limit is checked before this)."""
    size = len(await request.body())
    if size > MAX_BATCH_BODY_BYTES:
        raise UsageError(
            f"Batched logging API requests must be at most {MAX_BATCH_BODY_BYTES} bytes, "
            f"got a request of size {size}."
        )


def check_batch(body: LogBatchIn) -> None:
    """MLflow's per-request counts, and its rule that a batch names each param once."""
    total = len(body.metrics) + len(body.params) + len(body.tags)
    counts = (
        ("metrics", MAX_BATCH_METRICS, len(body.metrics)),
        ("params", MAX_BATCH_PARAMS, len(body.params)),
        ("tags", MAX_BATCH_TAGS, len(body.tags)),
        ("metrics, params, and tags", MAX_BATCH_ENTITIES, total),
    )
    for what, limit, count in counts:
        if count > limit:
            raise UsageError(
                f"A batch logging request can contain at most {limit} {what}. Got {count} {what}. "
                f"Please split up {what} across multiple requests and try again."
            )
    twice = repeated(param.key for param in body.params)
    if twice:
        raise UsageError(
            f"Duplicate parameter keys have been submitted: {twice}. Please ensure the request "
            "contains only one param value per param key."
        )


@router.post("/runs/log-metric")
def log_metric(body: LogMetricIn, backend: Backend, models: MlflowModels) -> dict[str, Any]:
    log_to_run(backend, models, body.id, metrics=[body])
    return {}


@router.post("/runs/log-parameter")
def log_param(body: LogParamIn, backend: Backend, models: MlflowModels) -> dict[str, Any]:
    log_to_run(backend, models, body.id, params={body.key: body.value})
    return {}


@router.post("/runs/set-tag")
def set_tag(body: SetTagIn, backend: Backend, models: MlflowModels) -> dict[str, Any]:
    log_to_run(backend, models, body.id, tags={body.key: body.value})
    return {}


@router.post("/runs/log-batch", dependencies=[Depends(batch_body_size)])
def log_batch(body: LogBatchIn, backend: Backend, models: MlflowModels) -> dict[str, Any]:
    check_batch(body)
    log_to_run(backend, models, body.id, body.metrics, pairs(body.params), pairs(body.tags))
    return {}


def log_to_run(
    backend: LocalBackend,
    models: MlflowModelStore,
    run_id: str,
    metrics: Sequence[MetricIn] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Log to a run as an MLflow server does, in one transaction: all of it lands, or none.

    ``mlflow.runName`` renames the run; points with a ``model_id`` are also kept as that
    logged model's metrics. Changing a logged param is MLflow's INVALID_PARAMETER_VALUE.
    """
    rest = dict(tags or {})
    name = rest.pop(NAME_TAG, None) or None
    points, by_model = run_points(backend, run_id, metrics)

    def log_to_models(session: Session) -> None:
        for model_id, model_points in by_model.items():
            models.log_metrics_in(session, model_id, model_points)

    try:
        backend.log_batch(run_id, points, params, rest, name=name, also=log_to_models if by_model else None)
    except AlreadyExistsError as e:
        raise UsageError(e.message) from None


def run_points(
    backend: LocalBackend, run_id: str, metrics: Sequence[MetricIn]
) -> tuple[list[Metric], dict[str, list[Metric]]]:
    """The points to log to the run, and those to keep as each logged model's metrics (by ``model_id``).

    ``log_model`` copies the run's points at the model's step onto the model with their
    ``model_id``: a point the run already has is not logged to it twice, as an MLflow
    server keeps one row per identical point.
    """
    points = [(m.model_id, m.to_metric()) for m in metrics]
    by_model: dict[str, list[Metric]] = {}
    for model_id, point in points:
        if model_id:
            by_model.setdefault(model_id, []).append(point)
    copied_keys = {point.key for model_id, point in points if model_id}
    known = {_identity(m) for key in copied_keys for m in backend.get_metric_history(run_id, key)}
    return [point for model_id, point in points if not (model_id and _identity(point) in known)], by_model


def _identity(metric: Metric) -> tuple[str, int, int, str]:
    return metric.key, metric.step, metric.timestamp, repr(metric.value)


@router.post("/runs/log-inputs")
def log_inputs(body: LogInputsIn, backend: Backend, datasets: MlflowDatasets) -> dict[str, Any]:
    """Dataset inputs of a run (``mlflow.log_input``, autologging); model inputs are not kept."""
    backend.writable_run(body.id)
    datasets.log_inputs(
        body.id,
        [
            DatasetInput(
                name=d.dataset.name,
                digest=d.dataset.digest,
                source_type=d.dataset.source_type,
                source=d.dataset.source,
                schema=d.dataset.schema_,
                profile=d.dataset.profile,
                tags=pairs(d.tags),
            )
            for d in body.datasets
        ],
    )
    return {}


@router.get("/metrics/get-history")
def metric_history(
    backend: Backend, metric_key: str, run_id: str | None = None, run_uuid: str | None = None
) -> dict[str, Any]:
    run = RunRef(run_id=run_id, run_uuid=run_uuid).id
    return {"metrics": [metric_out(m) for m in backend.get_metric_history(run, metric_key)]}


@router.api_route("/{endpoint:path}", methods=["GET", "POST", "PATCH", "DELETE"], include_in_schema=False)
def not_implemented(endpoint: str, request: Request) -> JSONResponse:
    return _error(
        404,
        "ENDPOINT_NOT_FOUND",
        f"{request.method} {request.url.path} is not part of the MLflow API that Quayside answers "
        "(experiments, runs, params, metrics, tags, batch logging, dataset inputs, logged models and artifacts)",
    )


# --- proxied artifacts (mlflow-artifacts:/<run id>/<path>) -----------------------------------


def split_artifact_path(path: str) -> tuple[str, str]:
    """``<run id>/<path in the run>`` as its two parts."""
    run_id, _, rest = path.strip("/").partition("/")
    if not run_id:
        raise UsageError("an artifact path starts with the run id: <run id>/<path>")
    return run_id, posixpath.normpath(rest) if rest else ""


@artifacts_router.get("/artifacts")
def list_artifacts(backend: Backend, path: Annotated[str, Query()] = "") -> dict[str, Any]:
    run_id, inside = split_artifact_path(path)
    infos = backend.list_artifacts(run_id, inside)
    files = []
    for info in infos:
        entry: dict[str, Any] = {"path": posixpath.basename(info.path), "is_dir": info.is_dir}
        if info.size is not None:
            entry["file_size"] = info.size
        files.append(entry)
    return {"files": files}


@artifacts_router.get("/artifacts/{path:path}")
def download_artifact(path: str, backend: Backend) -> FileResponse:
    run_id, inside = split_artifact_path(path)
    backend.get_run(run_id)
    return FileResponse(backend.artifacts.file_path(run_id, inside), media_type="application/octet-stream")


@artifacts_router.put("/artifacts/{path:path}")
async def put_artifact(path: str, request: Request, backend: Backend) -> dict[str, Any]:
    """Stream the body into the run's artifact directory, as Quayside's own upload route does."""
    run_id, inside = split_artifact_path(path)
    await upload_artifact(run_id, request, backend, inside)
    return {}
