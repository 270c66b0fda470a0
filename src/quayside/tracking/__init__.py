"""Experiment tracking: runs, params, metrics, tags, artifacts; store, client, search language, projects.

Arrives with the tracking store; imports ``packager`` and ``db`` only.
"""
