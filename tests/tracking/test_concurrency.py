"""Many processes logging to one run at once lose nothing."""

from __future__ import annotations

import multiprocessing

import pytest

from quayside.config import Settings
from quayside.tracking.client import Client

PROCESSES = 8
POINTS = 100


def log_from_a_worker(settings: Settings, run_id: str, worker: int) -> None:
    # Runs in a forked process: it builds its own client, as a separate training process would.
    client = Client(settings=settings)
    for step in range(POINTS):
        client.log_metric(run_id, "shared", worker * 1000 + step, step=step)
    client.log_param(run_id, f"worker_{worker}", worker)
    client.set_tag(run_id, "last_worker", worker)


@pytest.mark.parametrize("target_name", ["local_sqlite", "local_postgresql", "rest_sqlite"])
def test_eight_processes_logging_to_one_run_lose_no_metric_point(
    request: pytest.FixtureRequest, target_name: str
):
    target = request.getfixturevalue(target_name)
    client = target.client()
    run = client.create_run("concurrency")
    # fork, not spawn: the point is concurrent writers, not 8 interpreters importing Quayside.
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=log_from_a_worker, args=(target.settings, run.id, worker))
        for worker in range(PROCESSES)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [w.exitcode for w in workers] == [0] * PROCESSES

    history = client.get_metric_history(run.id, "shared")
    assert len(history) == PROCESSES * POINTS
    assert sorted(int(p.value) for p in history) == sorted(
        w * 1000 + s for w in range(PROCESSES) for s in range(POINTS)
    )
    stored = client.get_run(run.id)
    assert stored.params == {f"worker_{w}": str(w) for w in range(PROCESSES)}
    assert stored.tags["last_worker"] in {str(w) for w in range(PROCESSES)}
