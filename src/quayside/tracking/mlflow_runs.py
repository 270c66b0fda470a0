"""What MLflow's tracking calls mean for Quayside's runs: its system tags, and metric points logged models keep.

Pure rules; :meth:`~quayside.tracking.store.TrackingStore.log_mlflow_batch` applies them
inside its one transaction, and the MLflow adapter (``quayside.server.mlflow``) only
parses and renders.

- ``mlflow.runName`` is the run's name, never a stored tag (the two would drift apart);
  ``mlflow.parentRunId`` sets the parent run; a create call's ``user_id`` is the
  ``mlflow.user`` tag unless the tags name one. Those two are the run's own fields, so
  ``DeleteTag`` refuses them (:func:`check_deletable_tag`).
- A point sent with a ``model_id`` is also kept as that logged model's latest metric;
  ``log_model`` copies the run's points at the model's step onto the model with their
  ``model_id``, so a point the run already has is not logged to it twice, as an MLflow
  server keeps one row per identical point.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass

from quayside.errors import UsageError
from quayside.tracking.entities import Metric, Run

PARENT_TAG, NAME_TAG, USER_TAG = "mlflow.parentRunId", "mlflow.runName", "mlflow.user"


@dataclass(frozen=True)
class RunStart:
    """What an MLflow ``CreateRun`` asks of Quayside's ``create_run``: a name, the stored tags, a parent."""

    name: str | None
    tags: dict[str, str]
    parent_run_id: str | None


def run_start(
    tags: Mapping[str, str], *, user_id: str | None = None, run_name: str | None = None
) -> RunStart:
    """The run an MLflow ``CreateRun`` with these tags, ``user_id`` and ``run_name`` creates."""
    rest = dict(tags)
    if user_id and USER_TAG not in rest:
        rest[USER_TAG] = user_id
    name = run_name or rest.pop(NAME_TAG, None)
    rest.pop(NAME_TAG, None)  # the run's name is the tag; storing both would let them drift
    parent = rest.pop(PARENT_TAG, None)
    return RunStart(name or None, rest, parent)


def split_name_tag(tags: Mapping[str, str] | None) -> tuple[str | None, dict[str, str]]:
    """The new run name a batch's ``mlflow.runName`` tag asks for (or ``None``), and the other tags."""
    rest = dict(tags or {})
    return rest.pop(NAME_TAG, None) or None, rest


def check_deletable_tag(key: str) -> str:
    """The key of a tag ``DeleteTag`` may remove: not the run's name or parent, which are not tags here."""
    if key == NAME_TAG:
        raise UsageError(
            f"'{NAME_TAG}' is the run's name in Quayside, not a tag to delete; rename the run instead"
        )
    if key == PARENT_TAG:
        raise UsageError(f"'{PARENT_TAG}' is the run's parent in Quayside, not a tag to delete")
    return key


def run_tags(run: Run) -> dict[str, str]:
    """The run's tags as MLflow shows them: its name and parent as the system tags."""
    tags = dict(run.tags) | {NAME_TAG: run.name}
    if run.parent_run_id is not None:
        tags[PARENT_TAG] = run.parent_run_id
    return tags


@dataclass(frozen=True)
class MlflowPoint:
    """A metric point as MLflow logs it: for the run, and for a logged model when ``model_id`` is set."""

    metric: Metric
    model_id: str | None = None


def point_identity(metric: Metric) -> tuple[str, int, int, str]:
    return metric.key, metric.step, metric.timestamp, repr(metric.value)


def model_keys(points: Sequence[MlflowPoint]) -> set[str]:
    """The metric keys of the points sent with a model id (those the run may already have)."""
    return {point.metric.key for point in points if point.model_id}


def run_points(
    points: Sequence[MlflowPoint], known: Collection[tuple[str, int, int, str]]
) -> tuple[list[Metric], dict[str, list[Metric]]]:
    """The points to log to the run, and those each logged model keeps (by ``model_id``).

    ``known`` holds the :func:`point_identity` of the run's points under :func:`model_keys`;
    a model's point the run already has is not logged to the run again.
    """
    by_model: dict[str, list[Metric]] = {}
    for point in points:
        if point.model_id:
            by_model.setdefault(point.model_id, []).append(point.metric)
    for_run = [p.metric for p in points if not (p.model_id and point_identity(p.metric) in known)]
    return for_run, by_model
