"""Load-test report documents for registry tests: the shape ``quayside loadtest`` uploads, figures chosen by the test.

The registry judges figures, not who measured them, so a test that is about the policy
(not about load generation) states the figures it needs; tests of the whole workflow
run real load through ``quayside promote`` instead.
"""

from __future__ import annotations

import time
from typing import Any

from quayside.registry.client import RegistryClient
from quayside.registry.loadtests import LoadTestReport

GOOD_FIGURES = {"p50_ms": 2.0, "p90_ms": 3.0, "p95_ms": 4.0, "p99_ms": 6.0, "max_ms": 9.0, "mean_ms": 2.5}
SLO = "p95_ms<=25,error_rate<=0.001"


def report_document(
    digest: str,
    *,
    users: int = 8,
    duration_s: float = 30.0,
    started_at: float | None = None,
    requests: int = 3000,
    failures: int = 0,
    kind: str = "package",
    **figures: float,
) -> dict[str, Any]:
    """A report of ``requests`` over ``duration_s`` with :data:`GOOD_FIGURES` unless ``figures`` says otherwise."""
    latency = {**GOOD_FIGURES, **figures}
    return {
        "id": "from-the-client",
        "model": "ignored",
        "target": "http://127.0.0.1:1",
        "protocol": "v2",
        "path": "/v2/models/m/infer",
        "rows_per_request": 1,
        "users": users,
        "spawn_rate": 8.0,
        "duration_s": duration_s,
        "elapsed_s": duration_s,
        "started_at": time.time() if started_at is None else started_at,
        "summary": {"requests": requests, "failures": failures, "error_rate": 0.0, "rps": 100.0, **latency},
        "errors": [],
        "timeseries": [
            {"t": t, "users": users, "requests": 100, "failures": 0, "rps": 100.0} for t in (1, 2, 3)
        ],
        "generator": {"processes": 1, "cpu_s": 3.0, "cpu_percent": 10.0, "saturated": False, "cores": 2},
        "tested": {"kind": kind, "package_digest": digest},
        "verdict": None,
    }


HTML = "<!DOCTYPE html><html><body><h1>report</h1></body></html>"


def add_report(registry: RegistryClient, name: str, version: int, **kwargs: Any) -> LoadTestReport:
    """Upload a report of ``name``/``version``'s own package (``digest=`` names another package)."""
    digest = kwargs.pop("digest", None) or registry.get_version(name, version).digest
    return registry.add_loadtest_report(name, version, report_document(digest, **kwargs), HTML)


def clear_for_production(
    registry: RegistryClient, name: str, *versions: int, **kwargs: Any
) -> list[LoadTestReport]:
    """Give the model the :data:`SLO` (unless it has one) and each version a passing report of its own package.

    For tests about something other than the gate, which still go through it the way a user does.
    """
    if registry.get_policy(name).slo is None:
        registry.set_policy(name, slo=SLO)
    return [add_report(registry, name, version, **kwargs) for version in versions]
