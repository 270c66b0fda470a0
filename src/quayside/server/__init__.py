"""``create_app()``: the REST API for tracking (and, later, the registry and the web UI).

Each component contributes a router; :mod:`quayside.server.app` composes them and
installs the one error handler.
"""
