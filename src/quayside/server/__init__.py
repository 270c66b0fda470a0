"""``create_app()``: the REST API for tracking and the registry, the MLflow adapter, and the web UI, on one port.

Each component contributes a router; :mod:`quayside.server.app` composes them, builds the
app's typed state once (:mod:`quayside.server.deps`, which also holds every dependency the
routes take) and installs the one error handler. The MLflow adapter is the package
:mod:`quayside.server.mlflow`; the UI (:mod:`quayside.server.ui`) serves pages at ``/``.
"""
