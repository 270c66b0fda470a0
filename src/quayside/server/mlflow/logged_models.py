"""MLflow 3's logged-model routes, so that ``mlflow.<flavor>.log_model`` works against ``quayside server``.

The client creates the model (``POST /logged-models``), uploads the MLflow model
directory to the model's ``artifact_uri`` through the proxied artifact routes, and
finalizes it (``PATCH /logged-models/{id}``). Quayside stores the files as artifacts of
the source run, at the model's name (``model``, then ``model-2`` ... when taken), so
``runs:/<run id>/model`` is the MLflow model directory: ``quayside import mlflow`` takes
that URI, and MLflow's own ``mlflow.pyfunc.load_model("models:/<model id>")`` reads it
back through this server. A logged model needs a source run: Quayside keeps files per run.
Deleting a model hides it from every call (MLflow's soft delete); its files stay with the run.
Search reads MLflow's filter and ``order_by`` (:mod:`quayside.tracking.model_search`).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter

from quayside.errors import UsageError
from quayside.server.deps import Backend, MlflowModels, ReadableExperiments, ServerSettings
from quayside.server.mlflow.errors import MlflowRoute
from quayside.server.mlflow.messages import (
    ModelCreate,
    ModelFinalize,
    ModelParams,
    ModelSearch,
    ModelTags,
    RunOutputs,
    experiment_id_of,
    model_out,
    page_offset,
    pairs,
)
from quayside.tracking.mlflow_models import free_artifact_path

DEFAULT_MODEL_NAME = "model"
MAX_LOGGED_MODELS_PER_PAGE = 1000
"""Logged models in one page of MLflow's logged-model search (a larger ``max_results`` is cut to it)."""

router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


@router.post("/logged-models")
def create_logged_model(
    body: ModelCreate, backend: Backend, settings: ServerSettings, models: MlflowModels
) -> dict[str, Any]:
    if not body.source_run_id:
        raise UsageError(
            "Quayside keeps a logged model's files with the run that logged it: log the model inside "
            "mlflow.start_run() (or pass run_id=...)"
        )
    run = backend.writable_run(body.source_run_id)
    experiment_id = experiment_id_of(body.experiment_id, backend, settings)
    if run.experiment_id != experiment_id:
        raise UsageError(
            f"run '{run.id}' belongs to experiment {run.experiment_id}, not to experiment {experiment_id}"
        )
    name = body.name or DEFAULT_MODEL_NAME
    model = models.create(
        run.id,
        experiment_id,
        name,
        free_artifact_path(backend.artifacts, run.id, name),
        model_type=body.model_type or "",
        params=pairs(body.params),
        tags=pairs(body.tags),
    )
    return {"model": model_out(model)}


@router.get("/logged-models/{model_id}")
def get_logged_model(model_id: str, models: MlflowModels) -> dict[str, Any]:
    return {"model": model_out(models.get(model_id))}


@router.delete("/logged-models/{model_id}")
def delete_logged_model(model_id: str, models: MlflowModels) -> dict[str, Any]:
    models.delete(model_id)
    return {}


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
def search_logged_models(
    body: ModelSearch,
    backend: Backend,
    settings: ServerSettings,
    models: MlflowModels,
    readable: ReadableExperiments,
) -> dict[str, Any]:
    if body.datasets:
        raise UsageError(
            "datasets are not supported in a logged-model search: Quayside keeps each logged model's "
            "latest metric per key, not per dataset"
        )
    if not body.experiment_ids:
        raise UsageError("missing value for required parameter 'experiment_ids'")
    ids = [experiment_id_of(e, backend, settings) for e in body.experiment_ids]
    # In the query's own terms: experiments the caller may not read are not searched at all.
    ids = [i for i in ids if readable is None or i in readable]
    limit = min(max(body.max_results, 1), MAX_LOGGED_MODELS_PER_PAGE)
    offset = page_offset(body.page_token)
    order = [o.to_order() for o in body.order_by]
    found, total = models.search(ids, limit, offset, filter_string=body.filter, order_by=order)
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
