"""How long 10,000 metric points take to log, batched and one call at a time.

    python benchmarks/tracking_log_metrics.py                    # local SQLite in a temporary QUAYSIDE_HOME
    python benchmarks/tracking_log_metrics.py --db-url postgresql+psycopg://postgres@127.0.0.1/test
    python benchmarks/tracking_log_metrics.py --tracking-uri http://127.0.0.1:5000   # a running `quayside server`

Each measurement starts from a fresh run and is checked: the run must hold every point afterwards.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from quayside import Metric
from quayside.config import Settings
from quayside.tracking.client import Client

POINTS = 10_000


def timed(label: str, client: Client, log) -> float:
    run = client.create_run("benchmark", run_name=label)
    start = time.perf_counter()
    log(client, run.id)
    elapsed = time.perf_counter() - start
    logged = len(client.get_metric_history(run.id, "loss"))
    assert logged == POINTS, f"{label}: {logged} of {POINTS} points stored"
    print(f"{label:<44} {elapsed * 1000:8.1f} ms  ({POINTS / elapsed:,.0f} points/s)")
    return elapsed


def one_batch(client: Client, run_id: str) -> None:
    client.log_batch(run_id, metrics=[Metric("loss", 1 / (step + 1), step) for step in range(POINTS)])


def batches_of_1000(client: Client, run_id: str) -> None:
    for start in range(0, POINTS, 1000):
        client.log_batch(run_id, metrics=[Metric("loss", 1 / (s + 1), s) for s in range(start, start + 1000)])


def one_call_per_point(client: Client, run_id: str) -> None:
    for step in range(POINTS):
        client.log_metric(run_id, "loss", 1 / (step + 1), step=step)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db-url", help="database URL (default: SQLite in a temporary directory)")
    parser.add_argument("--tracking-uri", help="http://host:port of a quayside server")
    parser.add_argument("--skip-single", action="store_true", help="skip the one-call-per-point measurement")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="quayside-bench-") as home:
        settings = Settings(home=Path(home), db_url=args.db_url, tracking_uri=args.tracking_uri)
        client = Client(settings=settings)
        client.get_or_create_experiment("benchmark")  # opens and migrates the database outside the timing
        where = args.tracking_uri or settings.database_url.split("://")[0]
        print(f"{POINTS:,} metric points to {where}")
        timed("log_batch, one call of 10,000 points", client, one_batch)
        timed("log_batch, 10 calls of 1,000 points", client, batches_of_1000)
        if not args.skip_single:
            timed("log_metric, 10,000 calls of one point", client, one_call_per_point)


if __name__ == "__main__":
    main()
