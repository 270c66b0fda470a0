"""The subset of MLflow's REST API that the ``mlflow`` Python client uses for tracking, logged models and the registry.

With ``MLFLOW_TRACKING_URI`` pointing at ``quayside server``, unchanged
``mlflow.set_experiment / start_run / log_param(s) / log_metric(s) / set_tag /
log_artifact / <flavor>.log_model`` code logs into Quayside's store. Each route parses
MLflow's request shape, calls the tracking domain once, and renders MLflow's response
shape; errors are MLflow's ``{"error_code", "message"}`` bodies, which the client turns
into ``MlflowException``s.

- :mod:`~quayside.server.mlflow.errors`: the error map, the route class, the
  ``ENDPOINT_NOT_FOUND`` catch-all;
- :mod:`~quayside.server.mlflow.messages`: request bodies and response renderers;
- :mod:`~quayside.server.mlflow.tracking`, :mod:`~quayside.server.mlflow.logged_models`,
  :mod:`~quayside.server.mlflow.artifacts`, :mod:`~quayside.server.mlflow.registry`: the
  routes, by resource (the registry's messages, stages and search language beside them);
- :func:`install_mlflow`: the one place that mounts them, under both of MLflow's prefixes.

How MLflow's terms map onto Quayside's:

- experiment ids are Quayside's integer ids as strings; MLflow's default experiment
  ``"0"`` is Quayside's default experiment (``QUAYSIDE_EXPERIMENT``);
- run ids, millisecond timestamps, statuses and lifecycle stages (``active``/``deleted``)
  are the same (``SCHEDULED`` becomes ``RUNNING``); the ``mlflow.parentRunId`` tag sets
  the parent run, and ``mlflow.runName`` is the run's name
  (:mod:`quayside.tracking.mlflow_runs`);
- a run's ``artifact_uri`` is ``mlflow-artifacts:/<run id>``, so the client uploads and
  downloads through the proxied artifact routes, into the run's artifact directory;
- registered models and model versions are Quayside's registry's, its stages in MLflow's
  names (:mod:`~quayside.server.mlflow.stages`), its promotion policy in force.

Endpoints not served answer ``ENDPOINT_NOT_FOUND`` naming the endpoint.
"""

from __future__ import annotations

from fastapi import FastAPI

from quayside.server.mlflow import artifacts, logged_models, registry, tracking
from quayside.server.mlflow.errors import not_found_router

MLFLOW_PREFIXES = ("/api/2.0/mlflow", "/ajax-api/2.0/mlflow")
ARTIFACTS_PREFIXES = ("/api/2.0/mlflow-artifacts", "/ajax-api/2.0/mlflow-artifacts")


def install_mlflow(app: FastAPI) -> None:
    """Mount the MLflow routes under both of MLflow's prefixes (``/api`` and the UI's ``/ajax-api``)."""
    for prefix in MLFLOW_PREFIXES:
        app.include_router(logged_models.router, prefix=prefix, include_in_schema=False)
        app.include_router(tracking.router, prefix=prefix, include_in_schema=False)
        app.include_router(registry.router, prefix=prefix, include_in_schema=False)
        # Last: it answers every endpoint the routers before it do not know.
        app.include_router(not_found_router, prefix=prefix, include_in_schema=False)
    for prefix in ARTIFACTS_PREFIXES:
        app.include_router(artifacts.router, prefix=prefix, include_in_schema=False)
