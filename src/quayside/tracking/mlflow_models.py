"""Models the MLflow client logs (MLflow 3's ``LoggedModel``), kept beside the runs that logged them.

``mlflow.<flavor>.log_model`` first creates a logged model on the tracking server, then
uploads the MLflow model directory to the model's artifact location, then marks the
model ready (or failed). Quayside keeps the record here and the files as artifacts of
the source run, under ``artifact_path``, so that ``runs:/<run id>/<artifact_path>`` names
the MLflow model directory (``quayside import mlflow`` takes it from there). The name
is never that path itself: the server derives the path with
:func:`quayside.names.path_component`, and records made before keep the path they stored.

A deleted model is MLflow's soft delete: its record and files stay, and nothing finds it
(no get, search, or write). ``models:/m-<id>`` (:func:`logged_model_id`) is MLflow 3's URI
of a logged model; ``quayside import mlflow`` resolves it to the model's folder.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from quayside.db.engine import Sessions
from quayside.db.sql import Lifecycle, now_ms
from quayside.errors import NotFoundError, UsageError
from quayside.names import check_name, path_component
from quayside.tracking.artifacts import RunArtifacts
from quayside.tracking.entities import Metric, check_key, param_values, tag_values
from quayside.tracking.tables import MlflowModelRow

if TYPE_CHECKING:
    from quayside.tracking.model_search import ModelOrder

LOGGED_MODEL = "logged model"
"""What the name rule calls a logged model's name in its messages."""
PENDING, READY, FAILED = "LOGGED_MODEL_PENDING", "LOGGED_MODEL_READY", "LOGGED_MODEL_UPLOAD_FAILED"
STATUSES = (PENDING, READY, FAILED)
_LOGGED_MODEL_URI = re.compile(r"models:/(m-[0-9a-f]{32})/?")


def logged_model_id(uri: str) -> str | None:
    """The logged model's id in MLflow 3's ``models:/m-<32 hex digits>``, or ``None`` for any other URI
    (``models:/<name>/<version>`` and ``models:/<name>@<alias>`` name registered versions)."""
    match = _LOGGED_MODEL_URI.fullmatch(uri)
    return match.group(1) if match else None


@dataclass(frozen=True)
class MlflowLoggedModel:
    """A logged model: where its files are (an artifact folder of its run) and what MLflow set on it."""

    id: str
    run_id: str
    experiment_id: int
    name: str
    artifact_path: str
    model_type: str
    status: str
    params: Mapping[str, str]
    tags: Mapping[str, str]
    metrics: Mapping[str, Metric]
    created_at: int
    updated_at: int

    @property
    def uri(self) -> str:
        """The model directory as a Quayside model URI."""
        return f"runs:/{self.run_id}/{self.artifact_path}"


def free_artifact_path(artifacts: RunArtifacts, run_id: str, name: str) -> str:
    """The folder for a logged model named ``name`` in the run's artifacts: ``path_component(name)``,
    or that with ``-2``, ``-3`` ... when a folder or file has it (the name itself is never a path)."""
    base = path_component(check_name(LOGGED_MODEL, name))
    candidate, number = base, 1
    while artifacts.exists(run_id, candidate):
        number += 1
        candidate = f"{base}-{number}"
    return candidate


def new_model_id() -> str:
    """An id in MLflow's shape (``m-`` and 32 hex digits)."""
    return f"m-{uuid.uuid4().hex}"


def check_status(status: str) -> str:
    if status not in STATUSES:
        raise UsageError(f"logged model status must be one of {', '.join(STATUSES)}, not {status!r}")
    return status


def _model(row: MlflowModelRow) -> MlflowLoggedModel:
    metrics = {key: Metric(key, *point) for key, point in json.loads(row.metrics).items()}
    return MlflowLoggedModel(
        id=row.id,
        run_id=row.run_id,
        experiment_id=row.experiment_id,
        name=row.name,
        artifact_path=row.artifact_path,
        model_type=row.model_type,
        status=row.status,
        params=json.loads(row.params),
        tags=json.loads(row.tags),
        metrics=metrics,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )


class MlflowModelStore:
    """Logged-model records in the tracking database (the runs they belong to must exist)."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def create(
        self,
        run_id: str,
        experiment_id: int,
        name: str,
        artifact_path: str,
        *,
        model_type: str = "",
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> MlflowLoggedModel:
        """A pending logged model of ``run_id`` whose files go to the run's ``artifact_path``."""
        check_name(LOGGED_MODEL, name)
        created = now_ms()
        row = MlflowModelRow(
            id=new_model_id(),
            run_id=run_id,
            experiment_id=experiment_id,
            name=name,
            artifact_path=artifact_path,
            model_type=model_type,
            status=PENDING,
            lifecycle=Lifecycle.ACTIVE,
            params=json.dumps(param_values(params or {})),
            tags=json.dumps(tag_values(tags or {})),
            metrics="{}",
            created_at=created,
            updated_at=created,
        )
        with self.sessions.write() as session:
            session.add(row)
            session.flush()
            return _model(row)

    def get(self, model_id: str) -> MlflowLoggedModel:
        with self.sessions.read() as session:
            return _model(_row(session, model_id))

    def for_run(self, run_id: str) -> list[MlflowLoggedModel]:
        """The run's logged models, oldest first."""
        query = select(MlflowModelRow).where(MlflowModelRow.run_id == run_id, _LIVE)
        with self.sessions.read() as session:
            return [_model(row) for row in session.scalars(query.order_by(MlflowModelRow.created_at))]

    def search(
        self,
        experiment_ids: Iterable[int],
        limit: int,
        offset: int = 0,
        *,
        filter_string: str = "",
        order_by: Sequence[ModelOrder] = (),
    ) -> tuple[list[MlflowLoggedModel], int]:
        """A page of the experiments' live logged models and how many match in all: those matching
        ``filter_string`` (:mod:`~quayside.tracking.model_search`), in ``order_by``'s order, else
        newest first (then by id)."""
        # model_search reads this module's entities; imported here so that each module loads alone.
        from quayside.tracking.model_search import model_filter, order_keys, sort_models

        matches = model_filter(filter_string)  # a bad filter or order is refused before any query
        order_keys(order_by)
        where = (MlflowModelRow.experiment_id.in_(list(experiment_ids)), _LIVE)
        query = select(MlflowModelRow).where(*where)
        if not filter_string.strip() and not order_by:
            ordered = query.order_by(MlflowModelRow.created_at.desc(), MlflowModelRow.id)
            with self.sessions.read() as session:
                total = session.scalar(select(func.count()).select_from(MlflowModelRow).where(*where)) or 0
                rows = session.scalars(ordered.offset(offset).limit(limit))
                return [_model(row) for row in rows], total
        with self.sessions.read() as session:
            found = [model for model in map(_model, session.scalars(query)) if matches(model)]
        return sort_models(found, order_by)[offset : offset + limit], len(found)

    def delete(self, model_id: str) -> MlflowLoggedModel:
        """Mark a logged model deleted (its files stay with its run); nothing finds it after."""
        return self._update(model_id, lambda row: setattr(row, "lifecycle", Lifecycle.DELETED))

    def files(self, model_id: str) -> tuple[str, str]:
        """The run and the artifact path in it that hold a live logged model's files."""
        model = self.get(model_id)
        return model.run_id, model.artifact_path

    def finalize(self, model_id: str, status: str) -> MlflowLoggedModel:
        check_status(status)
        return self._update(model_id, lambda row: setattr(row, "status", status))

    def set_tags(self, model_id: str, tags: Mapping[str, str]) -> MlflowLoggedModel:
        checked = tag_values(tags)
        return self._update(model_id, lambda row: _merge(row, "tags", checked))

    def delete_tag(self, model_id: str, key: str) -> MlflowLoggedModel:
        def drop(row: MlflowModelRow) -> None:
            tags = json.loads(row.tags)
            if key not in tags:
                raise NotFoundError(f"logged model '{model_id}' has no tag '{key}'")
            del tags[key]
            row.tags = json.dumps(tags)

        return self._update(model_id, drop)

    def log_params(self, model_id: str, params: Mapping[str, str]) -> MlflowLoggedModel:
        checked = param_values(params)
        return self._update(model_id, lambda row: _merge(row, "params", checked))

    def log_metrics(self, model_id: str, metrics: Iterable[Metric]) -> MlflowLoggedModel:
        """Keep each key's latest point (by step, then time), as a run's latest metrics are chosen."""
        return self._update(model_id, lambda row: _keep_latest(row, metrics))

    def _update(self, model_id: str, change: Callable[[MlflowModelRow], None]) -> MlflowLoggedModel:
        with self.sessions.write() as session:
            return _model(_change(session, model_id, change))


def log_model_metrics(session: Session, model_id: str, metrics: Iterable[Metric]) -> None:
    """:meth:`MlflowModelStore.log_metrics` in the caller's transaction (a run's MLflow batch,
    :meth:`~quayside.tracking.store.TrackingStore.log_mlflow_batch`)."""
    _change(session, model_id, lambda row: _keep_latest(row, metrics))


def _change(session: Session, model_id: str, change: Callable[[MlflowModelRow], None]) -> MlflowModelRow:
    row = _row(session, model_id)
    change(row)
    row.updated_at = now_ms()
    session.flush()
    return row


_LIVE = MlflowModelRow.lifecycle == Lifecycle.ACTIVE


def _row(session: Session, model_id: str) -> MlflowModelRow:
    """The live model's row (a deleted one is not found, as in MLflow)."""
    row = session.get(MlflowModelRow, model_id)
    if row is None or row.lifecycle != Lifecycle.ACTIVE:
        raise NotFoundError(f"no logged model with id '{model_id}'")
    return row


def _keep_latest(row: MlflowModelRow, metrics: Iterable[Metric]) -> None:
    latest = json.loads(row.metrics)
    for m in metrics:
        check_key("metric", m.key)
        point = [m.value, m.step, m.timestamp]
        if m.key not in latest or point[1:] >= latest[m.key][1:]:
            latest[m.key] = point
    row.metrics = json.dumps(latest)


def _merge(row: MlflowModelRow, column: str, values: Mapping[str, str]) -> None:
    setattr(row, column, json.dumps(json.loads(getattr(row, column)) | dict(values)))
