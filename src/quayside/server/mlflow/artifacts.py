"""MLflow's proxied artifact routes (``mlflow-artifacts:/<run id>/<path>``) over the runs' artifacts.

A run's ``artifact_uri`` is ``mlflow-artifacts:/<run id>``, so the MLflow client uploads
and downloads here, streamed into and out of the artifact store (``Range`` honoured).

Registered versions' MLflow files are a second namespace, read-only:
``registered-models/<name>/<version>/<path>`` lists and downloads the MLflow model directory a
version was registered from, kept in its package (:mod:`quayside.compose.mlflow_registry`); a
version's download URI points here, so ``mlflow.pyfunc.load_model("models:/<name>@<alias>")``
loads exactly what was registered. Run ids are 32 hex digits, so the two never meet.
"""

from __future__ import annotations

import posixpath
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request

from quayside.compose.mlflow_registry import (
    list_mlflow_files,
    mlflow_file,
    refuse_upload,
    registered_path,
)
from quayside.errors import UsageError
from quayside.server.deps import Backend, Registry
from quayside.server.downloads import ArtifactResponse, local_file_download
from quayside.server.mlflow.errors import MlflowRoute
from quayside.server.tracking import artifact_download, upload_artifact

router = APIRouter(tags=["mlflow"], route_class=MlflowRoute)


def split_artifact_path(path: str) -> tuple[str, str]:
    """``<run id>/<path in the run>`` as its two parts."""
    run_id, _, rest = path.strip("/").partition("/")
    if not run_id:
        raise UsageError("an artifact path starts with the run id: <run id>/<path>")
    return run_id, posixpath.normpath(rest) if rest else ""


@router.get("/artifacts")
def list_artifacts(
    backend: Backend, registry: Registry, path: Annotated[str, Query()] = ""
) -> dict[str, Any]:
    registered = registered_path(path)
    if registered is not None:
        infos = list_mlflow_files(registry, registered)
    else:
        run_id, inside = split_artifact_path(path)
        infos = backend.list_artifacts(run_id, inside)
    files = []
    for info in infos:
        entry: dict[str, Any] = {"path": posixpath.basename(info.path), "is_dir": info.is_dir}
        if info.size is not None:
            entry["file_size"] = info.size
        files.append(entry)
    return {"files": files}


@router.get("/artifacts/{path:path}")
def download_artifact(path: str, request: Request, backend: Backend, registry: Registry) -> ArtifactResponse:
    """Stream a file out, whole or the ``Range`` asked for, as Quayside's own download route does."""
    wanted = request.headers.get("range")
    registered = registered_path(path)
    if registered is not None:
        return local_file_download(mlflow_file(registry, registered), registered.path, wanted)
    run_id, inside = split_artifact_path(path)
    return artifact_download(backend, run_id, inside, wanted)


@router.put("/artifacts/{path:path}")
async def put_artifact(path: str, request: Request, backend: Backend) -> dict[str, Any]:
    """Stream the body into the run's artifact directory, as Quayside's own upload route does."""
    registered = registered_path(path)
    if registered is not None:
        raise refuse_upload(registered)
    run_id, inside = split_artifact_path(path)
    await upload_artifact(run_id, request, backend, inside)
    return {}
