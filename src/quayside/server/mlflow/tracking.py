"""MLflow's tracking routes: experiments and their tags, runs, metrics, batch logging and dataset inputs.

Each route parses MLflow's request, makes one call to the tracking domain and renders
MLflow's response (:mod:`~quayside.server.mlflow.messages`); MLflow's own rules about
system tags and logged models' metrics live in :mod:`quayside.tracking.mlflow_runs`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from fastapi import APIRouter, Depends, Request

from quayside.errors import AlreadyExistsError, UsageError
from quayside.identity.model import Identity, PrincipalKind, Resource, ResourceKind
from quayside.server.deps import (
    Backend,
    Caller,
    MlflowDatasets,
    MlflowModels,
    ReadableExperiments,
    ServerSettings,
    State,
)
from quayside.server.mlflow.errors import MlflowRoute
from quayside.server.mlflow.messages import (
    DeleteTagIn,
    ExperimentCreate,
    ExperimentRef,
    ExperimentSearch,
    ExperimentTagIn,
    ExperimentTagRef,
    ExperimentUpdate,
    LogBatchIn,
    LogInputsIn,
    LogMetricIn,
    LogParamIn,
    MetricIn,
    RunCreate,
    RunRef,
    RunSearch,
    RunUpdate,
    SetTagIn,
    dataset_input_out,
    experiment_id_of,
    experiment_out,
    lifecycles,
    metric_out,
    page_offset,
    page_size,
    pairs,
    run_info_out,
    run_out,
    run_status,
)
from quayside.server.tracking import repeated
from quayside.tracking.experiment_filter import experiment_name_filter
from quayside.tracking.mlflow_runs import USER_TAG, check_deletable_tag, run_start
from quayside.tracking.store import TrackingStore

router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


# --- experiments ----------------------------------------------------------------------------


@router.post("/experiments/create")
def create_experiment(
    body: ExperimentCreate, backend: Backend, caller: Caller, state: State
) -> dict[str, Any]:
    experiment = backend.create_experiment(body.name, pairs(body.tags))
    state.identity.grant_creator(caller, Resource(ResourceKind.EXPERIMENT, str(experiment.id)))
    return {"experiment_id": str(experiment.id)}


@router.get("/experiments/get")
def get_experiment(backend: Backend, settings: ServerSettings, experiment_id: str) -> dict[str, Any]:
    return {
        "experiment": experiment_out(
            backend.get_experiment(experiment_id_of(experiment_id, backend, settings))
        )
    }


@router.get("/experiments/get-by-name")
def get_experiment_by_name(backend: Backend, experiment_name: str) -> dict[str, Any]:
    return {"experiment": experiment_out(backend.get_experiment_by_name(experiment_name))}


@router.post("/experiments/search")
def search_experiments(
    body: ExperimentSearch, backend: Backend, readable: ReadableExperiments
) -> dict[str, Any]:
    wanted = lifecycles(body.view_type)
    experiments = backend.list_experiments(include_deleted=body.view_type != "ACTIVE_ONLY", readable=readable)
    experiments = [e for e in experiments if e.lifecycle in wanted]
    limit = page_size(body.max_results)
    offset = page_offset(body.page_token)
    matches = experiment_name_filter(body.filter)
    found = [e for e in experiments if matches(e.name)]
    answer: dict[str, Any] = {"experiments": [experiment_out(e) for e in found[offset : offset + limit]]}
    if offset + limit < len(found):
        answer["next_page_token"] = str(offset + limit)
    return answer


@router.post("/experiments/update")
def rename_experiment(body: ExperimentUpdate, backend: Backend, settings: ServerSettings) -> dict[str, Any]:
    backend.rename_experiment(experiment_id_of(body.experiment_id, backend, settings), body.new_name)
    return {}


@router.post("/experiments/delete")
def delete_experiment(body: ExperimentRef, backend: Backend, settings: ServerSettings) -> dict[str, Any]:
    backend.delete_experiment(experiment_id_of(body.experiment_id, backend, settings))
    return {}


@router.post("/experiments/restore")
def restore_experiment(body: ExperimentRef, backend: Backend, settings: ServerSettings) -> dict[str, Any]:
    backend.restore_experiment(experiment_id_of(body.experiment_id, backend, settings))
    return {}


@router.post("/experiments/set-experiment-tag")
def set_experiment_tag(body: ExperimentTagIn, backend: Backend, settings: ServerSettings) -> dict[str, Any]:
    backend.set_experiment_tag(experiment_id_of(body.experiment_id, backend, settings), body.key, body.value)
    return {}


@router.post("/experiments/delete-experiment-tag")
def delete_experiment_tag(
    body: ExperimentTagRef, backend: Backend, settings: ServerSettings
) -> dict[str, Any]:
    backend.delete_experiment_tag(experiment_id_of(body.experiment_id, backend, settings), body.key)
    return {}


# --- runs -----------------------------------------------------------------------------------


@router.post("/runs/create")
def create_run(body: RunCreate, backend: Backend, settings: ServerSettings, caller: Caller) -> dict[str, Any]:
    start = run_start(_user_tags(pairs(body.tags), caller), user_id=body.user_id, run_name=body.run_name)
    experiment_id = experiment_id_of(body.experiment_id, backend, settings)
    run = backend.create_run(experiment_id, start.name, start.tags, start.parent_run_id, body.start_time)
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


def _user_tags(tags: dict[str, str], caller: Identity) -> dict[str, str]:
    """With auth on, the run's user is the caller. The MLflow client always sends its OS user
    (``user_id``, ``mlflow.user``), so a differing one is replaced rather than refused."""
    if caller.kind == PrincipalKind.LOCAL:
        return tags
    return tags | {USER_TAG: caller.name}


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


@router.post("/runs/restore")
def restore_run(body: RunRef, backend: Backend) -> dict[str, Any]:
    backend.restore_run(body.id)
    return {}


@router.post("/runs/search")
def search_runs(
    body: RunSearch, backend: Backend, settings: ServerSettings, readable: ReadableExperiments
) -> dict[str, Any]:
    wanted = lifecycles(body.run_view_type, "run_view_type")
    limit = page_size(body.max_results)
    offset = page_offset(body.page_token)
    ids = [experiment_id_of(e, backend, settings) for e in body.experiment_ids]
    runs = backend.search_runs(
        ids, body.filter, body.order_by, limit, offset, readable=readable, lifecycles=wanted
    )
    answer: dict[str, Any] = {"runs": [run_out(r) for r in runs]}
    if len(runs) == limit:
        answer["next_page_token"] = str(offset + limit)
    return answer


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
def log_metric(body: LogMetricIn, backend: Backend) -> dict[str, Any]:
    log_to_run(backend, body.id, metrics=[body])
    return {}


@router.post("/runs/log-parameter")
def log_param(body: LogParamIn, backend: Backend) -> dict[str, Any]:
    log_to_run(backend, body.id, params={body.key: body.value})
    return {}


@router.post("/runs/set-tag")
def set_tag(body: SetTagIn, backend: Backend) -> dict[str, Any]:
    log_to_run(backend, body.id, tags={body.key: body.value})
    return {}


@router.post("/runs/delete-tag")
def delete_tag(body: DeleteTagIn, backend: Backend) -> dict[str, Any]:
    backend.delete_run_tag(body.id, check_deletable_tag(body.key))
    return {}


@router.post("/runs/log-batch", dependencies=[Depends(batch_body_size)])
def log_batch(body: LogBatchIn, backend: Backend) -> dict[str, Any]:
    check_batch(body)
    log_to_run(backend, body.id, body.metrics, pairs(body.params), pairs(body.tags))
    return {}


def log_to_run(
    backend: TrackingStore,
    run_id: str,
    metrics: Sequence[MetricIn] = (),
    params: Mapping[str, str] | None = None,
    tags: Mapping[str, str] | None = None,
) -> None:
    """Log to a run as an MLflow server does, in one transaction: all of it lands, or none.

    Changing a logged param is MLflow's INVALID_PARAMETER_VALUE, not a conflict.
    """
    points = [m.to_point() for m in metrics]
    try:
        backend.log_mlflow_batch(run_id, points, params, tags)
    except AlreadyExistsError as e:
        raise UsageError(e.message) from None


@router.post("/runs/log-inputs")
def log_inputs(body: LogInputsIn, datasets: MlflowDatasets) -> dict[str, Any]:
    """Dataset inputs of a run (``mlflow.log_input``, autologging); model inputs are not kept."""
    datasets.log_inputs(body.id, [d.to_input() for d in body.datasets])
    return {}


@router.get("/metrics/get-history")
def metric_history(
    backend: Backend, metric_key: str, run_id: str | None = None, run_uuid: str | None = None
) -> dict[str, Any]:
    run = RunRef(run_id=run_id, run_uuid=run_uuid).id
    return {"metrics": [metric_out(m) for m in backend.get_metric_history(run, metric_key)]}
