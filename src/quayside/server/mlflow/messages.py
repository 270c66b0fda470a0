"""MLflow's wire messages: the request bodies the adapter reads and the responses it renders.

Request models parse MLflow's JSON (``{"key", "value"}`` lists, string experiment ids,
page tokens); renderers turn Quayside's entities into MLflow's ``Experiment``, ``Run``,
``Metric``, ``LoggedModel`` ... messages. No store is written here: the route modules
call the domain and render with these.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, Field

from quayside.config import Settings
from quayside.db.sql import Lifecycle
from quayside.errors import NotFoundError, UsageError
from quayside.server.tracking import MetricValue
from quayside.tracking.entities import Experiment, Metric, Run, decode_float, encode_float
from quayside.tracking.limits import MAX_EXPERIMENT_ID, MAX_OFFSET, MAX_RUNS_PER_PAGE, MAX_SEARCH_EXPERIMENTS
from quayside.tracking.mlflow_datasets import DatasetInput
from quayside.tracking.mlflow_models import MlflowLoggedModel
from quayside.tracking.mlflow_runs import USER_TAG, MlflowPoint, run_tags
from quayside.tracking.model_search import ModelOrder
from quayside.tracking.store import TrackingStore

DEFAULT_EXPERIMENT_ID = "0"
# MLflow's server refuses a larger max_results (SEARCH_MAX_RESULTS_THRESHOLD); Quayside pages below it.
MLFLOW_MAX_RESULTS = 50_000
MLFLOW_DEFAULT_MAX_RESULTS = 1_000

# str.isdigit() also takes '²' and other digits int() refuses; ids and page tokens are ASCII decimals.
_DECIMAL = re.compile("[0-9]{1,19}")


def excerpt(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


# --- ids and pages ----------------------------------------------------------------------------


def experiment_id_of(value: str, backend: TrackingStore, settings: Settings) -> int:
    """Quayside's id for an MLflow experiment id; ``"0"`` is the default experiment."""
    if value == DEFAULT_EXPERIMENT_ID:
        return backend.get_or_create_experiment(settings.experiment).id
    if _DECIMAL.fullmatch(value) is None or int(value) > MAX_EXPERIMENT_ID:
        raise NotFoundError(f"no experiment with id '{excerpt(value)}'")
    return int(value)


def page_size(max_results: int) -> int:
    """How many to answer for ``max_results``: refused outside MLflow's 1 to 50,000, at most Quayside's page.

    A page shorter than asked is still a page: the client follows ``next_page_token``.
    """
    if not 1 <= max_results <= MLFLOW_MAX_RESULTS:
        raise UsageError(
            f"Invalid value for request parameter max_results: it must be a positive integer of at most "
            f"{MLFLOW_MAX_RESULTS}, but got {max_results}"
        )
    return min(max_results, MAX_RUNS_PER_PAGE)


def page_offset(page_token: str | None) -> int:
    """The results a page token skips: Quayside's tokens are offsets into the ordered result."""
    if not page_token:
        return 0
    if _DECIMAL.fullmatch(page_token) is None or int(page_token) > MAX_OFFSET:
        raise UsageError(f"page_token {excerpt(page_token)!r} was not given out by this server")
    return int(page_token)


def run_status(status: str) -> str:
    """MLflow's run status as Quayside's: the same words, and SCHEDULED is RUNNING."""
    return "RUNNING" if status.upper() == "SCHEDULED" else status


VIEW_TYPES: dict[str, tuple[str, ...]] = {
    "ACTIVE_ONLY": (Lifecycle.ACTIVE,),
    "DELETED_ONLY": (Lifecycle.DELETED,),
    "ALL": (Lifecycle.ACTIVE, Lifecycle.DELETED),
}


def lifecycles(view_type: str, what: str = "view_type") -> tuple[str, ...]:
    """The lifecycles MLflow's ``ViewType`` searches (``ACTIVE_ONLY``, ``DELETED_ONLY`` or ``ALL``)."""
    found = VIEW_TYPES.get(view_type)
    if found is None:
        raise UsageError(f"{what} must be ACTIVE_ONLY, DELETED_ONLY or ALL, not '{excerpt(view_type)}'")
    return found


# --- request bodies --------------------------------------------------------------------------


class KeyValue(BaseModel):
    key: str
    value: str = ""


def pairs(items: list[KeyValue]) -> dict[str, str]:
    return {item.key: item.value for item in items}


class MetricIn(BaseModel):
    key: str
    value: MetricValue
    timestamp: int = Field(0, ge=0)
    step: int = 0
    model_id: str | None = None

    def to_metric(self) -> Metric:
        return Metric(self.key, decode_float(self.value), self.step, self.timestamp)

    def to_point(self) -> MlflowPoint:
        return MlflowPoint(self.to_metric(), self.model_id)


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

    def to_input(self) -> DatasetInput:
        return DatasetInput(
            name=self.dataset.name,
            digest=self.dataset.digest,
            source_type=self.dataset.source_type,
            source=self.dataset.source,
            schema=self.dataset.schema_,
            profile=self.dataset.profile,
            tags=pairs(self.tags),
        )


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


class ModelOrderIn(BaseModel):
    field_name: str
    ascending: bool = True
    dataset_name: str | None = None
    dataset_digest: str | None = None

    def to_order(self) -> ModelOrder:
        if self.dataset_name or self.dataset_digest:
            raise UsageError(
                f"order_by '{excerpt(self.field_name)}' names a dataset: Quayside keeps each logged "
                "model's latest metric per key, not per dataset"
            )
        return ModelOrder(self.field_name, self.ascending)


class ModelSearch(BaseModel):
    experiment_ids: list[str] = Field(default_factory=list)
    filter: str = ""
    datasets: list[dict[str, Any]] = Field(default_factory=list)
    max_results: int = 100
    order_by: list[ModelOrderIn] = Field(default_factory=list)
    page_token: str | None = None


class ModelOutput(BaseModel):
    model_id: str
    step: int = 0


class RunOutputs(BaseModel):
    run_id: str
    models: list[ModelOutput] = Field(default_factory=list)


# --- responses -------------------------------------------------------------------------------


def key_values(values: Mapping[str, str]) -> list[dict[str, str]]:
    """MLflow's list of ``{"key", "value"}`` (params, tags), sorted by key; the inverse of :func:`pairs`."""
    return [{"key": k, "value": v} for k, v in sorted(values.items())]


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
        "tags": key_values(experiment.tags),
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
    return {
        "info": run_info_out(run),
        "data": {
            "metrics": [metric_out(m) for m in run.metrics.values()],
            "params": [{"key": k, "value": v} for k, v in run.params.items()],
            "tags": key_values(run_tags(run)),
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


# --- experiment tags, run tags (the rest of the tracking API) ----------------------------------


class ExperimentTagIn(ExperimentRef, KeyValue):
    pass


class ExperimentTagRef(ExperimentRef):
    key: str


class DeleteTagIn(RunRef):
    key: str
