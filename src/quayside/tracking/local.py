"""The local tracking backend: the SQL store for metadata and the artifact root on this filesystem.

The REST server runs this same backend behind its routes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path

from sqlalchemy.orm import Session

from quayside.config import Settings
from quayside.db.engine import DatabaseTimeouts
from quayside.errors import InvalidStateError, PackageError
from quayside.packager.manifest import PackageReader
from quayside.tracking.artifacts import ArtifactStore, check_artifact_path
from quayside.tracking.entities import (
    ArtifactInfo,
    Experiment,
    ExperimentActivity,
    LoggedModel,
    Metric,
    Run,
    RunKeys,
)
from quayside.tracking.store import TrackingStore


class LocalBackend:
    """Tracking in a SQL database plus an artifact directory; see :class:`TrackingBackend`."""

    def __init__(self, store: TrackingStore, artifacts: ArtifactStore) -> None:
        self.store = store
        self.artifacts = artifacts

    @classmethod
    def from_settings(cls, settings: Settings) -> LocalBackend:
        return cls(
            TrackingStore(settings.database_url, timeouts=DatabaseTimeouts.from_settings(settings)),
            ArtifactStore(settings.artifact_dir, max_bytes=settings.max_artifact_bytes),
        )

    # Metadata goes straight to the store.
    def create_experiment(self, name: str) -> Experiment:
        return self.store.create_experiment(name)

    def get_experiment(self, experiment_id: int) -> Experiment:
        return self.store.get_experiment(experiment_id)

    def get_experiment_by_name(self, name: str) -> Experiment:
        return self.store.get_experiment_by_name(name)

    def get_or_create_experiment(self, name: str) -> Experiment:
        return self.store.get_or_create_experiment(name)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.store.list_experiments(include_deleted)

    def rename_experiment(self, experiment_id: int, name: str) -> Experiment:
        return self.store.rename_experiment(experiment_id, name)

    def delete_experiment(self, experiment_id: int) -> Experiment:
        return self.store.delete_experiment(experiment_id)

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> Run:
        return self.store.create_run(experiment_id, name, tags, parent_run_id, start_time)

    def get_run(self, run_id: str) -> Run:
        return self.store.get_run(run_id)

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        exit_code: int | None = None,
        name: str | None = None,
    ) -> Run:
        return self.store.update_run(run_id, status=status, end_time=end_time, exit_code=exit_code, name=name)

    def delete_run(self, run_id: str) -> Run:
        return self.store.delete_run(run_id)

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
        *,
        name: str | None = None,
        also: Callable[[Session], None] | None = None,
    ) -> None:
        """See :meth:`TrackingStore.log_batch`: one transaction, with a rename and another store's share."""
        self.store.log_batch(run_id, metrics, params, tags, name=name, also=also)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.store.get_metric_history(run_id, key)

    def search_runs(
        self,
        experiment_ids: Iterable[int] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        return self.store.search_runs(experiment_ids, filter_string, order_by, max_results, offset)

    def count_runs(self, experiment_ids: Iterable[int] | None = None, filter_string: str = "") -> int:
        return self.store.count_runs(experiment_ids, filter_string)

    def experiment_activity(self) -> dict[int, ExperimentActivity]:
        return self.store.experiment_activity()

    def run_keys(self, experiment_id: int) -> RunKeys:
        return self.store.run_keys(experiment_id)

    # Artifacts: the run must exist and be live before anything is written for it.
    def writable_run(self, run_id: str) -> Run:
        run = self.store.get_run(run_id)
        if run.lifecycle != "active":
            raise InvalidStateError(f"run '{run_id}' is deleted; nothing more can be logged to it")
        return run

    def upload_artifact(self, run_id: str, local_file: Path, path: str) -> ArtifactInfo:
        check_artifact_path(path)
        self.writable_run(run_id)
        return self.artifacts.write_file(run_id, path, local_file)

    def list_artifacts(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        self.store.get_run(run_id)
        return self.artifacts.list(run_id, path, recursive=recursive)

    def download_artifacts(self, run_id: str, path: str, destination: Path) -> Path:
        self.store.get_run(run_id)
        return self.artifacts.copy_out(run_id, path, destination)

    def record_model(self, run_id: str, path: str) -> LoggedModel:
        """Verify the package logged at ``path`` (every digest) and record what its manifest says."""
        check_artifact_path(path)
        self.writable_run(run_id)
        directory = self.artifacts.resolve(run_id, path)
        try:
            manifest = PackageReader.open(directory).manifest
        except PackageError as e:
            raise PackageError(
                f"artifact '{path}' of run '{run_id}' is not a valid model package: {e.message}"
            ) from None
        return self.store.record_model(run_id, path, manifest)
