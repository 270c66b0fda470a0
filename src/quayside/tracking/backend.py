"""What a tracking backend does; the local store and the REST client both do all of it.

:class:`~quayside.tracking.client.Client` speaks to one of these, so the same
Python API works on a laptop's SQLite file and against a ``quayside server``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

from quayside.tracking.entities import ArtifactInfo, Experiment, LoggedModel, Metric, Run


class TrackingBackend(Protocol):
    def create_experiment(self, name: str) -> Experiment: ...
    def get_experiment(self, experiment_id: int) -> Experiment: ...
    def get_experiment_by_name(self, name: str) -> Experiment: ...
    def get_or_create_experiment(self, name: str) -> Experiment: ...
    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]: ...
    def rename_experiment(self, experiment_id: int, name: str) -> Experiment: ...
    def delete_experiment(self, experiment_id: int) -> Experiment: ...

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> Run: ...
    def get_run(self, run_id: str) -> Run: ...
    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        exit_code: int | None = None,
        name: str | None = None,
    ) -> Run: ...
    def delete_run(self, run_id: str) -> Run: ...

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None: ...
    def get_metric_history(self, run_id: str, key: str) -> list[Metric]: ...
    def search_runs(
        self,
        experiment_ids: Iterable[int] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 50,
        offset: int = 0,
    ) -> list[Run]: ...

    def upload_artifact(self, run_id: str, local_file: Path, path: str) -> ArtifactInfo: ...
    def list_artifacts(
        self, run_id: str, path: str = "", *, recursive: bool = False
    ) -> list[ArtifactInfo]: ...
    def download_artifacts(self, run_id: str, path: str, destination: Path) -> Path: ...
    def record_model(self, run_id: str, path: str) -> LoggedModel: ...
    def logged_model_files(self, model_id: str) -> tuple[str, str]: ...
