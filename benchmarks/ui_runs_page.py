"""How long the web UI's runs page takes with 10,000 runs in one experiment.

    python benchmarks/ui_runs_page.py                  # SQLite in a temporary QUAYSIDE_HOME
    python benchmarks/ui_runs_page.py --runs 2000 --db-url postgresql+psycopg://postgres@127.0.0.1/test

Each run has 3 params, a tag and 3 metrics of 10 steps each (300,000 metric points in all).
The rows are inserted in bulk through the tracking tables (logging 10,000 runs one call at
a time would measure the logging, not the page). Each page is fetched through the whole
server stack in process (routing, the store's queries, template rendering), 7 times; the
median and the slowest are printed, and every answer is checked for the expected rows.
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from fastapi.testclient import TestClient
from sqlalchemy import insert

from quayside.config import Settings
from quayside.server.app import create_app
from quayside.tracking.tables import MetricRow, ParamRow, RunRow, TagRow

REPEATS = 7
STEPS = 10


def populate(app, runs: int) -> int:
    """One experiment with ``runs`` finished runs; returns its id."""
    backend = app.state.tracking
    experiment = backend.create_experiment("ui-benchmark").id
    rng = random.Random(7)
    run_rows, param_rows, tag_rows, metric_rows = [], [], [], []
    start = 1_700_000_000_000
    for number in range(runs):
        run_id = uuid.uuid4().hex
        begin = start + number * 60_000
        run_rows.append(
            {
                "id": run_id,
                "experiment_id": experiment,
                "name": f"run-{number:05d}",
                "status": "FINISHED",
                "lifecycle": "active",
                "start_time": begin,
                "end_time": begin + rng.randint(1_000, 600_000),
            }
        )
        params = {
            "model": rng.choice(["rf", "gbm", "lr"]),
            "max_depth": str(rng.randint(2, 12)),
            "lr": f"{rng.random():.3f}",
        }
        param_rows += [{"run_id": run_id, "key": k, "value": v} for k, v in params.items()]
        tag_rows.append({"run_id": run_id, "key": "team", "value": rng.choice(["growth", "risk"])})
        accuracy = rng.random()
        for step in range(STEPS):
            for key, value in (
                ("accuracy", accuracy * (step + 1) / STEPS),
                ("loss", 1 / (step + 1 + accuracy)),
                ("f1", rng.random()),
            ):
                metric_rows.append(
                    {
                        "run_id": run_id,
                        "key": key,
                        "value": value,
                        "step": step,
                        "timestamp": begin + step * 1000,
                    }
                )
    with backend.store.sessions.write() as session:
        for table, rows in (
            (RunRow, run_rows),
            (ParamRow, param_rows),
            (TagRow, tag_rows),
            (MetricRow, metric_rows),
        ):
            for chunk in range(0, len(rows), 20_000):
                session.execute(insert(table), rows[chunk : chunk + 20_000])
    return experiment


def timed(client: TestClient, label: str, url: str, expect: str) -> float:
    times = []
    for _ in range(REPEATS):
        began = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - began)
        assert response.status_code == 200, f"{label}: {response.status_code} {response.text[:300]}"
        assert expect in response.text, f"{label}: '{expect}' not in the page"
    median, worst = statistics.median(times) * 1000, max(times) * 1000
    print(f"{label:<58} median {median:7.1f} ms   slowest {worst:7.1f} ms")
    return median


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--runs", type=int, default=10_000)
    parser.add_argument("--db-url", help="database URL (default: SQLite in a temporary directory)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quayside-bench-") as home:
        app = create_app(Settings(home=Path(home), db_url=args.db_url))
        began = time.perf_counter()
        experiment = populate(app, args.runs)
        print(
            f"{args.runs:,} runs, {args.runs * 3 * STEPS:,} metric points inserted in {time.perf_counter() - began:.1f} s"
        )
        client = TestClient(app)
        page = f"/experiments/{experiment}"
        total = f"of {args.runs}"
        timed(client, "experiments list", "/", "ui-benchmark")
        timed(client, "runs page 1 (newest first, 50 rows)", page, total)
        timed(client, "runs page 100 (offset 4,950)", f"{page}?page=100", total)
        timed(client, "sorted by metrics.accuracy desc", f"{page}?sort=metrics.accuracy&dir=desc", total)
        timed(client, "sorted by params.lr asc", f"{page}?sort=params.lr&dir=asc", total)
        timed(
            client,
            "200 rows per page, sorted by metrics.loss",
            f"{page}?sort=metrics.loss&per_page=200",
            total,
        )
        timed(
            client,
            "filter metrics.accuracy > 0.5 and params.model = 'rf'",
            f"{page}?filter=metrics.accuracy+%3E+0.5+and+params.model+%3D+%27rf%27&sort=metrics.accuracy",
            "Runs 1–50",
        )


if __name__ == "__main__":
    main()
