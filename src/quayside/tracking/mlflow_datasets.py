"""Datasets the MLflow client records as inputs of runs (``mlflow.log_input``, and every autologger).

Kept as MLflow sent them, so MLflow's client reads back what it wrote. A dataset input
logged twice to a run (same name, digest and tags) is kept once, as on an MLflow server.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import select

from quayside.db.engine import Sessions
from quayside.db.sql import now_ms
from quayside.names import check_name
from quayside.tracking.store import writable_run_row
from quayside.tracking.tables import MlflowDatasetInputRow

CONTEXT_TAG = "mlflow.data.context"


@dataclass(frozen=True)
class DatasetInput:
    """One dataset a run read: MLflow's ``Dataset`` fields and the input's tags."""

    name: str
    digest: str
    source_type: str
    source: str
    schema: str = ""
    profile: str = ""
    tags: Mapping[str, str] | None = None

    @property
    def context(self) -> str:
        """What the run used the dataset for (train, eval ...), or ``""``."""
        return (self.tags or {}).get(CONTEXT_TAG, "")

    def identity(self) -> tuple[str, str, str]:
        return self.name, self.digest, json.dumps(dict(self.tags or {}), sort_keys=True)


def _dataset(row: MlflowDatasetInputRow) -> DatasetInput:
    return DatasetInput(
        name=row.name,
        digest=row.digest,
        source_type=row.source_type,
        source=row.source,
        schema=row.schema,
        profile=row.profile,
        tags=json.loads(row.tags),
    )


class MlflowDatasetStore:
    """Dataset inputs of runs in the tracking database."""

    def __init__(self, sessions: Sessions) -> None:
        self.sessions = sessions

    def log_inputs(self, run_id: str, inputs: Iterable[DatasetInput]) -> None:
        """Record the run's dataset inputs, leaving out those it already has; the run must be live."""
        query = select(MlflowDatasetInputRow).where(MlflowDatasetInputRow.run_id == run_id)
        with self.sessions.write() as session:
            writable_run_row(session, run_id)
            seen = {_dataset(row).identity() for row in session.scalars(query)}
            for item in inputs:
                check_name("dataset", item.name)
                if item.identity() in seen:
                    continue
                seen.add(item.identity())
                session.add(
                    MlflowDatasetInputRow(
                        run_id=run_id,
                        name=item.name,
                        digest=item.digest,
                        source_type=item.source_type,
                        source=item.source,
                        schema=item.schema,
                        profile=item.profile,
                        tags=json.dumps(dict(item.tags or {}), sort_keys=True),
                        created_at=now_ms(),
                    )
                )

    def for_run(self, run_id: str) -> list[DatasetInput]:
        """The run's dataset inputs in the order they were logged."""
        query = select(MlflowDatasetInputRow).where(MlflowDatasetInputRow.run_id == run_id)
        with self.sessions.read() as session:
            return [_dataset(row) for row in session.scalars(query.order_by(MlflowDatasetInputRow.id))]
