"""``create_app()``: the REST API for tracking and the registry, and the web UI.

Arrives with the tracking server.
"""
