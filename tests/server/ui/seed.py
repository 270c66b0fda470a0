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
from quayside.loadtesting.report import write_report
from quayside.slo import evaluate, parse_slo
from quayside.registry.loadtests import report_dir
from quayside.tracking.client import Client
from quayside.tracking.entities import Run

EXPERIMENT = "ui-churn"
MLFLOW_EXPERIMENT = "ui-mlflow"
MODEL = "ui-iris"
REPORT_ID = "report0001"


@dataclass
class Seeded:
    experiment_id: int
    runs: dict[str, Run] = field(default_factory=dict)
    model: str = MODEL
    report_id: str = REPORT_ID


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


def loadtest_report(report_id: str, slo: str = "p95_ms<=25,error_rate<=0.001,rps>=50") -> dict:
    """A report as ``quayside loadtest`` writes it, with the verdict of ``slo`` on its summary."""
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
        "rps": 55.0,
        "p50_ms": 2.5,
        "p90_ms": 5.0,
        "p95_ms": 5.5,
        "p99_ms": 8.0,
        "max_ms": 12.0,
        "mean_ms": 3.0,
    }
    return {
        "id": report_id,
        "model": MODEL,
        "target": "http://127.0.0.1:9",
        "protocol": "v2",
        "path": f"/v2/models/{MODEL}/infer",
        "rows_per_request": 1,
        "users": 4,
        "spawn_rate": 4.0,
        "duration_s": 10.0,
        "elapsed_s": 10.0,
        "started_at": 1_790_000_000.0,
        "summary": summary,
        "errors": [],
        "timeseries": series,
        "verdict": evaluate(parse_slo(slo), summary).to_dict(),
    }


def seed(
    client: Client, registry: RegistryClient, artifact_root: Path, model, example, scratch: Path
) -> Seeded:
    """Three runs with params, metric series and artifacts; two versions registered from one; a load test."""
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
    write_report(loadtest_report(REPORT_ID), report_dir(artifact_root, MODEL, 1, REPORT_ID))
    experiment_id = client.get_experiment(EXPERIMENT).id
    return Seeded(experiment_id, runs)


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
