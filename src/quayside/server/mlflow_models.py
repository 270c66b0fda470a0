"""MLflow 3's logged-model routes, so that ``mlflow.<flavor>.log_model`` works against ``quayside server``.

The client creates the model (``POST /logged-models``), uploads the MLflow model
directory to the model's ``artifact_uri`` through the proxied artifact routes, and
finalizes it (``PATCH /logged-models/{id}``). Quayside stores the files as artifacts of
the source run, at the model's name (``model``, then ``model-2`` ... when taken), so
``runs:/<run id>/model`` is the MLflow model directory: ``quayside import mlflow`` takes
that URI, and MLflow's own ``mlflow.pyfunc.load_model("models:/<model id>")`` reads it
back through this server. A logged model needs a source run: Quayside keeps files per run.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field

from quayside.errors import UsageError
from quayside.names import check_name, path_component
from quayside.server.mlflow_compat import (
    DEFAULT_EXPERIMENT_ID,
    Backend,
    KeyValue,
    MlflowModels,
    MlflowRoute,
    artifact_uri,
    experiment_id_of,
    key_values,
    metric_out,
    page_offset,
    pairs,
)
from quayside.tracking.local import LocalBackend
from quayside.tracking.mlflow_models import LOGGED_MODEL, MlflowLoggedModel

DEFAULT_MODEL_NAME = "model"
MAX_SEARCH_RESULTS = 1000

router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


def model_out(model: MlflowLoggedModel) -> dict[str, Any]:
    """A logged model as MLflow's ``LoggedModel`` message."""
    return {
        "info": {
            "model_id": model.id,
            "experiment_id": str(model.experiment_id),
            "name": model.name,
            "creation_timestamp_ms": model.created_at,
            "last_updated_timestamp_ms": model.updated_at,
            "artifact_uri": artifact_uri(f"{model.run_id}/{model.artifact_path}"),
            "status": model.status,
            "model_type": model.model_type,
            "source_run_id": model.run_id,
            "tags": key_values(model.tags),
        },
        "data": {
            "params": key_values(model.params),
            "metrics": [
                metric_out(m) | {"model_id": model.id, "run_id": model.run_id} for m in model.metrics.values()
            ],
        },
    }


def free_artifact_path(backend: LocalBackend, run_id: str, name: str) -> str:
    """The folder for a logged model named ``name`` in the run's artifacts: ``path_component(name)``,
    or that with ``-2``, ``-3`` ... when a folder or file has it (the name itself is never a path)."""
    base = path_component(check_name(LOGGED_MODEL, name))
    candidate, number = base, 1
    while backend.artifacts.resolve(run_id, candidate).exists():
        number += 1
        candidate = f"{base}-{number}"
    return candidate


class ModelCreate(BaseModel):
    experiment_id: str = DEFAULT_EXPERIMENT_ID
    name: str | None = None
    model_type: str | None = None
    source_run_id: str | None = None
    params: list[KeyValue] = Field(default_factory=list)
    tags: list[KeyValue] = Field(default_factory=list)


class ModelFinalize(BaseModel):
    status: str


class ModelTags(BaseModel):
    tags: list[KeyValue] = Field(default_factory=list)


class ModelParams(BaseModel):
    params: list[KeyValue] = Field(default_factory=list)


class ModelSearch(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str = ""
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    max_results: int = 100
    order_by: list[dict[str, Any]] = Field(default_factory=list)
    page_token: str | None = None


class ModelOutput(BaseModel):
    model_id: str
    step: int = 0


class RunOutputs(BaseModel):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


@router.post("/logged-models")
def create_logged_model(
    body: ModelCreate, request: Request, backend: Backend, models: MlflowModels
) -> dict[str, Any]:
    if not body.source_run_id:
        raise UsageError(
            "Quayside keeps a logged model's files with the run that logged it: log the model inside "
            "mlflow.start_run() (or pass run_id=...)"
        )
    run = backend.writable_run(body.source_run_id)
    experiment_id = experiment_id_of(request, body.experiment_id)
    if run.experiment_id != experiment_id:
        raise UsageError(
            f"run '{run.id}' belongs to experiment {run.experiment_id}, not to experiment {experiment_id}"
        )
    name = body.name or DEFAULT_MODEL_NAME
    model = models.create(
        run.id,
        experiment_id,
        name,
        free_artifact_path(backend, run.id, name),
        model_type=body.model_type or "",
        params=pairs(body.params),
        tags=pairs(body.tags),
    )
    return {"model": model_out(model)}


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, models: MlflowModels) -> dict[str, Any]:
    return {"model": model_out(models.get(model_id))}


@router.patch("/logged-models/{model_id}")
def finalize_logged_model(model_id: str, body: ModelFinalize, models: MlflowModels) -> dict[str, Any]:
    return {"model": model_out(models.finalize(model_id, body.status))}


@router.patch("/logged-models/{model_id}/tags")
def set_logged_model_tags(model_id: str, body: ModelTags, models: MlflowModels) -> dict[str, Any]:
    models.set_tags(model_id, pairs(body.tags))
    return {}


@router.delete("/logged-models/{model_id}/tags/{key:path}")
def delete_logged_model_tag(model_id: str, key: str, models: MlflowModels) -> dict[str, Any]:
    models.delete_tag(model_id, key)
    return {}


@router.post("/logged-models/{model_id}/params")
def log_logged_model_params(model_id: str, body: ModelParams, models: MlflowModels) -> dict[str, Any]:
    models.log_params(model_id, pairs(body.params))
    return {}


@router.post("/logged-models/search")
def search_logged_models(body: ModelSearch, request: Request, models: MlflowModels) -> dict[str, Any]:
    if body.filter.strip() or body.datasets or body.order_by:
        raise UsageError(
            "Quayside lists an experiment's logged models newest first; filters, datasets and "
            "order_by are not supported"
        )
    if not body.experiment_ids:
        raise UsageError("missing value for required parameter 'experiment_ids'")
    ids = [experiment_id_of(request, e) for e in body.experiment_ids]
    limit = min(max(body.max_results, 1), MAX_SEARCH_RESULTS)
    offset = page_offset(body.page_token)
    found, total = models.search(ids, limit, offset)
    answer: dict[str, Any] = {"models": [model_out(m) for m in found]}
    if offset + limit < total:
        answer["next_page_token"] = str(offset + limit)
    return answer


@router.post("/runs/outputs")
def log_outputs(body: RunOutputs, backend: Backend, models: MlflowModels) -> dict[str, Any]:
    """Link models to the run that produced them: in Quayside a logged model always belongs to its run."""
    backend.writable_run(body.run_id)
    for output in body.models:
        model = models.get(output.model_id)
        if model.run_id != body.run_id:
            raise UsageError(
                f"logged model '{model.id}' was logged by run '{model.run_id}'; Quayside records a "
                "model as the output of the run that logged it only"
            )
    return {}
