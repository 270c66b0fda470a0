"""``create_app()``: the REST API for tracking and the registry, and the web UI, on one port.

Each component contributes a router; :mod:`quayside.server.app` composes them and
installs the one error handler. The UI (:mod:`quayside.server.ui`) serves pages at ``/``.
"""
