"""``Client``: the tracking API by run id, over the local store or a ``quayside server``.

The backend is picked from the tracking URI: ``http(s)://...`` talks to a server;
anything else (or nothing) uses the local SQL store and artifact root from the
settings. Every method behaves the same on both.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from quayside import config
from quayside.config import Settings, load_settings
from quayside.credentials import token_for
from quayside.errors import NotFoundError, UsageError
from quayside.tracking.backend import TrackingBackend
from quayside.tracking.entities import (
    ArtifactInfo,
    Experiment,
    LoggedModel,
    Metric,
    Run,
    RunStatus,
    metric_number,
)
from quayside.tracking.limits import check_experiment_id, check_page


def backend_for(settings: Settings, tracking_uri: str | None = None) -> TrackingBackend:
    """The backend a tracking URI names (falling back to ``settings.tracking_uri``, then the local store)."""

    def rest(uri: str) -> TrackingBackend:
        from quayside.tracking.rest import RestBackend

        return RestBackend(uri, timeout_s=settings.http_timeout_s, token=token_for(settings, uri))

    def local(settings: Settings) -> TrackingBackend:
        from quayside.tracking.store import TrackingStore

        return TrackingStore.from_settings(settings)

    uri = tracking_uri or settings.tracking_uri
    return config.backend_for(uri, settings, what="tracking", rest=rest, local=local)


class Client:
    """Experiments, runs, metrics, params, tags, artifacts and models, addressed by id.

    ``Client()`` reads the ``QUAYSIDE_*`` settings; ``Client("http://host:5000")``
    talks to that server; ``Client("sqlite:///runs.db")`` uses that database.
    """

    def __init__(self, tracking_uri: str | None = None, *, settings: Settings | None = None) -> None:
        self.settings = settings or load_settings()
        self.backend = backend_for(self.settings, tracking_uri)

    # --- experiments -----------------------------------------------------------------------

    def create_experiment(self, name: str) -> Experiment:
        return self.backend.create_experiment(name)

    def get_experiment(self, name_or_id: str | int) -> Experiment:
        """An experiment by id (an int) or by name (a string)."""
        if isinstance(name_or_id, int):
            return self.backend.get_experiment(check_experiment_id(name_or_id))
        return self.backend.get_experiment_by_name(name_or_id)

    def get_or_create_experiment(self, name: str) -> Experiment:
        return self.backend.get_or_create_experiment(name)

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        return self.backend.list_experiments(include_deleted)

    def rename_experiment(self, name_or_id: str | int, new_name: str) -> Experiment:
        return self.backend.rename_experiment(self.get_experiment(name_or_id).id, new_name)

    def delete_experiment(self, name_or_id: str | int) -> Experiment:
        return self.backend.delete_experiment(self.get_experiment(name_or_id).id)

    # --- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment: str | int | None = None,
        run_name: str | None = None,
        tags: Mapping[str, Any] | None = None,
        parent_run_id: str | None = None,
    ) -> Run:
        """Start a run (status RUNNING) in an experiment, created if it is a new name."""
        experiment = experiment if experiment is not None else self.settings.experiment
        if isinstance(experiment, int):
            experiment_id = self.backend.get_experiment(experiment).id
        else:
            experiment_id = self.backend.get_or_create_experiment(experiment).id
        tag_values = {k: str(v) for k, v in (tags or {}).items()}
        return self.backend.create_run(experiment_id, run_name, tag_values, parent_run_id)

    def get_run(self, run_id: str) -> Run:
        return self.backend.get_run(run_id)

    def set_terminated(
        self, run_id: str, status: RunStatus | str = "FINISHED", exit_code: int | None = None
    ) -> Run:
        """End a run: FINISHED, FAILED or KILLED, with the process's exit code if there was one."""
        return self.backend.update_run(run_id, status=RunStatus.parse(str(status)).value, exit_code=exit_code)

    def rename_run(self, run_id: str, name: str) -> Run:
        return self.backend.update_run(run_id, name=name)

    def delete_run(self, run_id: str) -> Run:
        return self.backend.delete_run(run_id)

    def search_runs(
        self,
        experiments: Iterable[str | int] | str | int | None = None,
        filter: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        """Runs matching a filter (see :mod:`quayside.tracking.search`), in the given experiments or all;
        ``offset`` skips that many of the ordered result (pages of ``max_results``)."""
        max_results, offset = check_page(max_results, offset)
        ids = None
        if experiments is not None:
            names = [experiments] if isinstance(experiments, str | int) else list(experiments)
            ids = [self.get_experiment(e).id for e in names]
        return self.backend.search_runs(ids, filter, order_by, max_results, offset)

    # --- logging ----------------------------------------------------------------------------

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Log many metric points, params and tags in one round trip and one transaction."""
        self.backend.log_batch(
            run_id,
            [Metric(m.key, metric_number(m.key, m.value), m.step, m.timestamp) for m in metrics],
            {k: str(v) for k, v in (params or {}).items()},
            {k: str(v) for k, v in (tags or {}).items()},
        )

    def log_param(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, params={key: value})

    def log_params(self, run_id: str, params: Mapping[str, Any]) -> None:
        self.log_batch(run_id, params=params)

    def log_metric(
        self, run_id: str, key: str, value: float, step: int = 0, timestamp: int | None = None
    ) -> None:
        self.log_batch(run_id, metrics=[Metric(key, metric_number(key, value), step, timestamp or 0)])

    def log_metrics(
        self, run_id: str, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None
    ) -> None:
        points = [Metric(k, metric_number(k, v), step, timestamp or 0) for k, v in metrics.items()]
        self.log_batch(run_id, metrics=points)

    def set_tag(self, run_id: str, key: str, value: Any) -> None:
        self.log_batch(run_id, tags={key: value})

    def set_tags(self, run_id: str, tags: Mapping[str, Any]) -> None:
        self.log_batch(run_id, tags=tags)

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        return self.backend.get_metric_history(run_id, key)

    # --- artifacts and models -----------------------------------------------------------------

    def log_artifact(
        self, run_id: str, local_path: str | Path, artifact_path: str | None = None
    ) -> ArtifactInfo:
        """Copy a local file into the run's artifacts, under the directory ``artifact_path`` if given."""
        source = Path(local_path)
        if source.is_dir():
            raise UsageError(f"'{source}' is a directory; use log_artifacts for directories")
        if not source.is_file():
            raise NotFoundError(f"no file at '{source}' to log as an artifact")
        return self.backend.upload_artifact(run_id, source, _join(artifact_path, source.name))

    def log_artifacts(
        self, run_id: str, local_dir: str | Path, artifact_path: str | None = None
    ) -> list[ArtifactInfo]:
        """Copy every file under a local directory into the run's artifacts, keeping the layout."""
        source = Path(local_dir)
        if not source.is_dir():
            raise NotFoundError(f"no directory at '{source}' to log as artifacts")
        logged = []
        for root, _dirs, files in os.walk(source):
            for name in sorted(files):
                file = Path(root) / name
                relative = file.relative_to(source).as_posix()
                logged.append(self.backend.upload_artifact(run_id, file, _join(artifact_path, relative)))
        return logged

    def list_artifacts(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        return self.backend.list_artifacts(run_id, path, recursive=recursive)

    def download_artifacts(self, run_id: str, path: str = "", destination: str | Path = ".") -> Path:
        """Copy an artifact file or directory into ``destination`` and return the local copy's path."""
        return self.backend.download_artifacts(run_id, path, Path(destination))

    def log_model(self, run_id: str, model: Any, name: str, **save_model_kwargs: Any) -> LoggedModel:
        """Save ``model`` as a package in the run's artifacts under ``name``; record its digest and signature.

        Keyword arguments go to :func:`quayside.save_model` (``input_example``, ``signature``,
        ``to_onnx``, ...). The package's manifest names this run as its ``source_run``.
        """
        from quayside.packager.package import save_model

        if "source_run" in save_model_kwargs:
            raise UsageError("log_model sets source_run to the run itself; do not pass it")
        from quayside.tracking.artifacts import check_artifact_path

        check_artifact_path(name)
        with tempfile.TemporaryDirectory(prefix="quayside-model-") as staging:
            package = Path(staging) / Path(name).name
            save_model(model, package, source_run=run_id, **save_model_kwargs)
            self.log_artifacts(run_id, package, name)
        return self.backend.record_model(run_id, name)


def _join(directory: str | None, name: str) -> str:
    # Only a trailing slash is dropped: "/etc" must still reach the path check as absolute.
    return f"{directory.rstrip('/')}/{name}" if directory else name
