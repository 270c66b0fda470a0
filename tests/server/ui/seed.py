"""The data every UI test looks at, created the way a user would: through the Python client and the REST API."""

from __future__ import annotations

import json
import struct
import time
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quayside import Metric, RegistryClient
from quayside.loadtesting.report import render_html
from quayside.registry.loadtests import LoadTestReport
from quayside.tracking.client import Client
from quayside.tracking.entities import Run

EXPERIMENT = "ui-churn"
MLFLOW_EXPERIMENT = "ui-mlflow"
MODEL = "ui-iris"
"""Two versions; production and the alias ``champion`` protected; v1 has a passing load test."""
GATED = "ui-gated"
"""One version in staging without a load test: production is closed to it until one passes."""
SLO_MODEL = "ui-slo"
"""One version with a passing load test, for a test that changes the policy's SLO."""
SLO = "p95_ms<=25,error_rate<=0.001,rps>=50"
PROTECTED_ALIAS = "champion"


@dataclass
class Seeded:
    experiment_id: int
    runs: dict[str, Run] = field(default_factory=dict)
    model: str = MODEL
    report_id: str = ""
    """The registry's id of MODEL v1's load-test report."""


def png(width: int = 16, height: int = 8) -> bytes:
    """A small solid-colour PNG, written by hand so no imaging library is needed."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)

    rows = b"".join(b"\x00" + b"\x19\x71\xc2" * width for _ in range(height))
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


def loadtest_report(digest: str, *, p95_ms: float = 5.5, started_at: float | None = None) -> dict:
    """A report of ``digest``'s package as ``quayside loadtest`` uploads it: 4 users for 10 s, 500 requests."""
    series = [
        {
            "t": t,
            "users": 4,
            "requests": 50,
            "failures": 0,
            "rps": 50.0 + t,
            "p50_ms": 2.0 + t / 10,
            "p95_ms": 4.0 + t / 5,
            "p99_ms": 6.0 + t / 4,
        }
        for t in range(1, 11)
    ]
    summary = {
        "requests": 500,
        "failures": 0,
        "error_rate": 0.0,
        "rps": 50.0,
        "p50_ms": 2.5,
        "p90_ms": 5.0,
        "p95_ms": p95_ms,
        "p99_ms": max(8.0, p95_ms),
        "max_ms": max(12.0, p95_ms),
        "mean_ms": 3.0,
    }
    return {
        "id": "from-the-client",
        "model": MODEL,
        "target": "http://127.0.0.1:9",
        "protocol": "v2",
        "path": f"/v2/models/{MODEL}/infer",
        "rows_per_request": 1,
        "users": 4,
        "spawn_rate": 4.0,
        "duration_s": 10.0,
        "elapsed_s": 10.0,
        "started_at": time.time() if started_at is None else started_at,
        "summary": summary,
        "errors": [],
        "timeseries": series,
        "generator": {"processes": 1, "cpu_s": 1.0, "cpu_percent": 10.0, "saturated": False, "cores": 2},
        "tested": {"kind": "package", "package_digest": digest},
        "verdict": None,
    }


def upload_report(registry: RegistryClient, name: str, version: int, **figures: float) -> LoadTestReport:
    """Upload a report of the version's own package (figures as :func:`loadtest_report` takes them)."""
    document = loadtest_report(registry.get_version(name, version).digest, **figures)
    return registry.add_loadtest_report(name, version, document, render_html(document))


def seed(client: Client, registry: RegistryClient, model, example, scratch: Path) -> Seeded:
    """Three runs with params, metric series and artifacts; versions of three models registered from one,
    each with a promotion policy; load tests uploaded as ``quayside promote`` uploads them."""
    runs: dict[str, Run] = {}
    specs = [
        ("rf-shallow", "rf", 4, 0.81, "FINISHED"),
        ("rf-deep", "rf", 8, 0.86, "FINISHED"),
        ("gbm", "gbm", 4, 0.9, "FAILED"),
    ]
    for name, kind, depth, accuracy, _status in specs:
        run = client.create_run(EXPERIMENT, run_name=name, tags={"team": "growth"})
        losses = [Metric("loss", round(1.0 / (step + 1) + depth / 100, 4), step) for step in range(20)]
        client.log_batch(
            run.id, [*losses, Metric("accuracy", accuracy, 19)], {"model": kind, "max_depth": str(depth)}
        )
        runs[name] = run
    client.create_run("ui-empty-experiment", run_name="lonely")

    shallow = runs["rf-shallow"].id
    files = scratch / "files"
    (files / "reports").mkdir(parents=True)
    (files / "notes.txt").write_text("trained on iris\nsecond line\n")
    (files / "summary.json").write_text(json.dumps({"accuracy": 0.81, "classes": [0, 1, 2]}))
    (files / "reports" / "sample.csv").write_text("feature,importance\npetal length,0.42\npetal width,0.38\n")
    (files / "reports" / "plot.png").write_bytes(png())
    client.log_artifacts(shallow, files)
    client.log_model(shallow, model, "model", input_example=example)
    client.log_model(shallow, model, "model-b", input_example=example, metadata={"variant": "b"})
    for name, *_, status in specs:
        client.set_terminated(runs[name].id, status)
        runs[name] = client.get_run(runs[name].id)

    registry.register_model(f"runs:/{shallow}/model", MODEL, reason="first cut")
    registry.register_model(f"runs:/{shallow}/model-b", MODEL, reason="variant b")
    registry.set_policy(MODEL, slo=SLO, protected_aliases=[PROTECTED_ALIAS], reason="ui tests")
    report = upload_report(registry, MODEL, 1)

    registry.register_model(f"runs:/{shallow}/model", GATED, reason="gated")
    registry.set_policy(GATED, slo=SLO, reason="ui tests")
    registry.transition(GATED, 1, "staging", reason="offline eval ok")

    registry.register_model(f"runs:/{shallow}/model", SLO_MODEL, reason="slo")
    registry.set_policy(SLO_MODEL, slo=SLO, reason="ui tests")
    upload_report(registry, SLO_MODEL, 1)
    experiment_id = client.get_experiment(EXPERIMENT).id
    return Seeded(experiment_id, runs, report_id=report.id)


@dataclass(frozen=True)
class MlflowSeeded:
    experiment_id: str
    run_id: str
    model_id: str


def seed_mlflow(url: str) -> MlflowSeeded:
    """A run with a dataset input and a logged model, sent as MLflow's client sends them (its REST API)."""
    with httpx.Client(base_url=url + "/api/2.0/mlflow", timeout=30) as http:

        def call(method: str, path: str, body: dict) -> dict:
            response = http.request(method, path, json=body)
            assert response.status_code == 200, response.text
            return response.json()

        experiment_id = call("POST", "/experiments/create", {"name": MLFLOW_EXPERIMENT})["experiment_id"]
        run = call("POST", "/runs/create", {"experiment_id": experiment_id, "run_name": "from-mlflow"})
        run_id = run["run"]["info"]["run_id"]
        dataset = {"name": "iris", "digest": "5a5c68bf", "source_type": "code", "source": "{}"}
        context = [{"key": "mlflow.data.context", "value": "training"}]
        call(
            "POST",
            "/runs/log-inputs",
            {"run_id": run_id, "datasets": [{"tags": context, "dataset": dataset}]},
        )
        created = call(
            "POST",
            "/logged-models",
            {"experiment_id": experiment_id, "source_run_id": run_id, "name": "model"},
        )
        model_id = created["model"]["info"]["model_id"]
        upload = http.put(
            f"{url}/api/2.0/mlflow-artifacts/artifacts/{run_id}/model/MLmodel", content=b"flavors: {}\n"
        )
        assert upload.status_code == 200, upload.text
        call("PATCH", f"/logged-models/{model_id}", {"status": "LOGGED_MODEL_READY"})
        ended = int(time.time() * 1000)
        call("POST", "/runs/update", {"run_id": run_id, "status": "FINISHED", "end_time": ended})
    return MlflowSeeded(experiment_id, run_id, model_id)
