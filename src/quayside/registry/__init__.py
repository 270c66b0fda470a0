"""The model registry: versions, stages, aliases, audit log, and model URI resolution.

Arrives with the registry; imports ``packager`` and ``db``, refers to runs by id only.
"""
