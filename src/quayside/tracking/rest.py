"""The REST tracking backend: the same operations as the local store, over HTTP to ``quayside server``.

Errors come back as the server's ``{"error": {"code", "message"}}`` and are raised
again here as the same :class:`~quayside.errors.QuaysideError` subclass, so callers
cannot tell which backend they are on. A server that cannot be reached is an
:class:`~quayside.errors.UnavailableError` naming the URL.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import httpx

from quayside.errors import (
    AuthenticationError,
    NotFoundError,
    PermissionDeniedError,
    QuaysideError,
    UnavailableError,
    UsageError,
)
from quayside.restclient import JsonApi, json_or_none
from quayside.tracking.artifacts import CHUNK, check_artifact_path
from quayside.tracking.batches import batch_bodies, check_batch
from quayside.tracking.entities import ArtifactInfo, Experiment, LoggedModel, Metric, Run

API_PREFIX = "/api/tracking"
MLFLOW_PREFIX = "/api/2.0/mlflow"
"""The server's MLflow adapter: MLflow's logged models are known to Quayside's server through it only."""

# MLflow's error bodies carry no Quayside code; the status says which error it is.
_MLFLOW_ERRORS: dict[int, type[QuaysideError]] = {
    400: UsageError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    503: UnavailableError,
}


class _MlflowApi(JsonApi):
    """The server's MLflow routes, whose errors are MLflow's ``{"error_code", "message"}``."""

    def raise_for_error(self, response: httpx.Response) -> None:
        if response.status_code < 400:
            return
        body = json_or_none(response)
        message = body.get("message") if isinstance(body, dict) else None
        cls = _MLFLOW_ERRORS.get(response.status_code, QuaysideError)
        raise cls(str(message or f"the {self.what} answered {response.status_code} without an error body"))


class RestBackend:
    """Tracking through a ``quayside server``; see :class:`TrackingBackend`."""

    def __init__(self, base_url: str, timeout_s: float = 30.0, *, token: str | None = None) -> None:
        self.base_url = base_url.rstrip("/")
        self._api = JsonApi(
            self.base_url, API_PREFIX, what="tracking server", timeout_s=timeout_s, token=token
        )
        self._mlflow = _MlflowApi(
            self.base_url, MLFLOW_PREFIX, what="tracking server", timeout_s=timeout_s, token=token
        )

    def close(self) -> None:
        self._api.close()
        self._mlflow.close()

    # --- transport -------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._api.request(method, url, **kwargs)

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._api.json(method, url, **kwargs)

    # --- experiments -------------------------------------------------------------------------

    def create_experiment(self, name: str) -> Experiment:
        return Experiment.from_dict(self._json("POST", "/experiments", json={"name": name}))

    def get_experiment(self, experiment_id: int) -> Experiment:
        return Experiment.from_dict(self._json("GET", f"/experiments/{int(experiment_id)}"))

    def get_experiment_by_name(self, name: str) -> Experiment:
        return Experiment.from_dict(self._json("GET", "/experiments/lookup", params={"name": name}))

    def get_or_create_experiment(self, name: str) -> Experiment:
        body = {"name": name, "exist_ok": True}
        return Experiment.from_dict(self._json("POST", "/experiments", json=body))

    def list_experiments(self, include_deleted: bool = False) -> list[Experiment]:
        body = self._json("GET", "/experiments", params={"include_deleted": include_deleted})
        return [Experiment.from_dict(e) for e in body["experiments"]]

    def rename_experiment(self, experiment_id: int, name: str) -> Experiment:
        return Experiment.from_dict(
            self._json("PATCH", f"/experiments/{int(experiment_id)}", json={"name": name})
        )

    def delete_experiment(self, experiment_id: int) -> Experiment:
        return Experiment.from_dict(self._json("DELETE", f"/experiments/{int(experiment_id)}"))

    # --- runs ---------------------------------------------------------------------------------

    def create_run(
        self,
        experiment_id: int,
        name: str | None = None,
        tags: Mapping[str, str] | None = None,
        parent_run_id: str | None = None,
        start_time: int | None = None,
    ) -> Run:
        body = {
            "experiment_id": experiment_id,
            "name": name,
            "tags": dict(tags or {}),
            "parent_run_id": parent_run_id,
            "start_time": start_time,
        }
        return Run.from_dict(self._json("POST", "/runs", json=body))

    def get_run(self, run_id: str) -> Run:
        return Run.from_dict(self._json("GET", f"/runs/{_segment(run_id)}"))

    def update_run(
        self,
        run_id: str,
        *,
        status: str | None = None,
        end_time: int | None = None,
        exit_code: int | None = None,
        name: str | None = None,
    ) -> Run:
        body = {"status": status, "end_time": end_time, "exit_code": exit_code, "name": name}
        body = {k: v for k, v in body.items() if v is not None}
        return Run.from_dict(self._json("PATCH", f"/runs/{_segment(run_id)}", json=body))

    def delete_run(self, run_id: str) -> Run:
        return Run.from_dict(self._json("DELETE", f"/runs/{_segment(run_id)}"))

    def log_batch(
        self,
        run_id: str,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, str] | None = None,
        tags: Mapping[str, str] | None = None,
    ) -> None:
        """Log metric points, params and tags; a batch over one request's limits goes as several.

        A batch within the limits of one request (:mod:`quayside.tracking.batches`) lands whole
        or not at all, as on the local store. A larger one is checked whole here, then sent as
        several requests, params first, then tags, then the metric points in the order given,
        and the first error stops it: it is not atomic across requests. That is acceptable
        because what can still fail part-way is the run's state, not the batch: a param already
        logged with another value is a 409 from a request of params, before any metric point of
        the batch has landed (params of earlier requests, all new, stay: params are written
        once); and metric points are append-only, so the points that did land are true points of
        their series (calling again after, say, a lost connection logs those twice).
        """
        params = {k: str(v) for k, v in (params or {}).items()}
        tags = {k: str(v) for k, v in (tags or {}).items()}
        bodies = batch_bodies(metrics, params, tags)
        if len(bodies) > 1:
            check_batch(metrics, params, tags)
        url = f"/runs/{_segment(run_id)}/batch"
        for body in bodies:
            self._request("POST", url, content=body, headers={"content-type": "application/json"})

    def get_metric_history(self, run_id: str, key: str) -> list[Metric]:
        body = self._json("GET", f"/runs/{_segment(run_id)}/metrics/history", params={"key": key})
        return [Metric.from_dict(m) for m in body["metrics"]]

    def search_runs(
        self,
        experiment_ids: Iterable[int] | None = None,
        filter_string: str = "",
        order_by: Sequence[str] | str | None = None,
        max_results: int = 50,
        offset: int = 0,
    ) -> list[Run]:
        body = {
            "experiment_ids": list(experiment_ids) if experiment_ids is not None else None,
            "filter": filter_string,
            "order_by": [order_by] if isinstance(order_by, str) else list(order_by or []),
            "max_results": max_results,
            "offset": offset,
        }
        return [Run.from_dict(r) for r in self._json("POST", "/runs/search", json=body)["runs"]]

    # --- artifacts ------------------------------------------------------------------------------

    def upload_artifact(self, run_id: str, local_file: Path, path: str) -> ArtifactInfo:
        check_artifact_path(path)
        with Path(local_file).open("rb") as handle:
            body = self._json(
                "PUT",
                f"/runs/{_segment(run_id)}/artifacts/file",
                params={"path": path},
                content=_chunks(handle),
                headers={"content-type": "application/octet-stream"},
            )
        return ArtifactInfo.from_dict(body)

    def list_artifacts(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        params = {"path": path, "recursive": recursive}
        body = self._json("GET", f"/runs/{_segment(run_id)}/artifacts", params=params)
        return [ArtifactInfo.from_dict(a) for a in body["artifacts"]]

    def download_artifacts(self, run_id: str, path: str, destination: Path) -> Path:
        check_artifact_path(path, allow_root=True)
        entries = self.list_artifacts(run_id, path, recursive=True)
        destination = Path(destination)
        top = destination / (Path(path).name if path else run_id)
        files = [e for e in entries if not e.is_dir]
        if len(files) == 1 and files[0].path == path:
            self._download_file(run_id, path, top)
            return top
        prefix = f"{path.rstrip('/')}/" if path else ""
        top.mkdir(parents=True, exist_ok=True)
        for entry in entries:
            target = top / entry.path.removeprefix(prefix)
            if entry.is_dir:
                target.mkdir(parents=True, exist_ok=True)
            else:
                self._download_file(run_id, entry.path, target)
        return top

    def _download_file(self, run_id: str, path: str, target: Path) -> None:
        target.parent.mkdir(parents=True, exist_ok=True)
        url = f"/runs/{_segment(run_id)}/artifacts/file"
        with self._api.stream("GET", url, params={"path": path}) as response:
            partial = target.with_name(f".{target.name}.partial")
            with partial.open("wb") as handle:
                for chunk in response.iter_bytes(CHUNK):
                    handle.write(chunk)
            partial.replace(target)

    def record_model(self, run_id: str, path: str) -> LoggedModel:
        return LoggedModel.from_dict(
            self._json("POST", f"/runs/{_segment(run_id)}/models", json={"path": path})
        )

    def logged_model_files(self, model_id: str) -> tuple[str, str]:
        """The run and artifact path of an MLflow logged model, from the server's MLflow API."""
        info = self._mlflow.json("GET", f"/logged-models/{_segment(model_id)}")["model"]["info"]
        run_id = str(info.get("source_run_id") or "")
        folder = f"mlflow-artifacts:/{run_id}/"
        uri = str(info.get("artifact_uri", ""))
        if not run_id or not uri.startswith(folder):
            raise UsageError(
                f"logged model '{model_id}' keeps its files at {uri!r}, not in a run of this server"
            )
        return run_id, uri.removeprefix(folder)


def _segment(value: str) -> str:
    """A URL path segment; ids never hold '/', and one that does must not change the route."""
    from urllib.parse import quote

    return quote(str(value), safe="")


def _chunks(handle: Any) -> Iterator[bytes]:
    while chunk := handle.read(CHUNK):
        yield chunk
