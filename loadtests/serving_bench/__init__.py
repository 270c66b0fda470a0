"""Quayside's serving benchmarks: Quayside against hand-written, BentoML and MLflow servers.

Entry points live one folder up: ``serving_benchmark.py`` (throughput, latency
and cold start), ``batching_benchmark.py`` (adaptive batching on versus off)
and ``profile_serving.sh`` (py-spy under load). This package holds what they
share, one job per module:

- ``paths``: where venvs, models, logs and results go
- ``envs``: one cached venv per competitor, installed with pip
- ``models``: the benchmark models and their saved forms (Quayside, ONNX, MLflow)
- ``payloads``: request bodies per protocol, and labels read back from responses
- ``processes``: server subprocesses in their own process groups, always stopped
- ``servers``: how each server is started, probed and called
- ``wrk``: load generation with wrk and a Lua script, and its results
- ``machine``: what the numbers were measured on
- ``report``: Markdown sections of RESULTS.md and the raw JSON beside it
"""
