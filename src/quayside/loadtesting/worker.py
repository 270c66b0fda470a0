"""``python -m quayside.loadtesting.worker``: one local worker of a distributed load test.

A Locust ``WorkerRunner`` connected to the master of :mod:`.distributed`, running the
same user class a single-process run does. Every request it finishes is kept (when it
finished, how long it took, its failure type) and sent with the next report Locust makes
for the master, so the master records exact latencies rather than Locust's rounded
buckets; the report after the users have stopped says so, and holds the last of them.
"""

from __future__ import annotations

import argparse
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quayside.loadtesting.runner import error_type

REPORT_INTERVAL_S = 1.0
"""How often a worker reports to the master (Locust's default is 3 s): the live panel lags by this much."""


@dataclass
class Shipper:
    """Keeps this worker's finished requests until Locust's next report to the master carries them."""

    samples: list[tuple[float, float, str | None]] = field(default_factory=list)
    stopped: bool = False

    def on_request(self, response_time: float, exception: BaseException | None = None, **_: Any) -> None:
        error = None if exception is None else error_type(exception)
        self.samples.append((time.time(), float(response_time), error))

    def on_test_start(self, **_: Any) -> None:
        self.stopped = False

    def on_test_stop(self, **_: Any) -> None:
        self.stopped = True

    def on_report_to_master(self, client_id: str, data: dict[str, Any]) -> None:
        from quayside.loadtesting.distributed import REPORT_KEY

        samples, self.samples = self.samples, []
        data[REPORT_KEY] = {"pid": os.getpid(), "samples": samples, "stopped": self.stopped}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m quayside.loadtesting.worker", description=__doc__)
    parser.add_argument("--master-host", default="127.0.0.1")
    parser.add_argument("--master-port", type=int, required=True)
    parser.add_argument("--payloads", type=Path, required=True, help="the JSON file the master wrote")
    parser.add_argument("--target", required=True, help="base URL, or HOST:PORT for gRPC")
    args = parser.parse_args(argv)

    from quayside.loadtesting.users import import_locust

    import_locust()  # gevent patches the standard library before anything opens a socket
    import locust.runners
    from locust.env import Environment

    from quayside.loadtesting.distributed import read_payloads
    from quayside.loadtesting.runner import user_class_for

    locust.runners.WORKER_REPORT_INTERVAL = REPORT_INTERVAL_S
    environment = Environment(user_classes=[user_class_for(read_payloads(args.payloads), args.target)])
    shipper = Shipper()
    environment.events.request.add_listener(shipper.on_request)
    environment.events.test_start.add_listener(shipper.on_test_start)
    environment.events.test_stop.add_listener(shipper.on_test_stop)
    environment.events.report_to_master.add_listener(shipper.on_report_to_master)
    runner = environment.create_worker_runner(args.master_host, args.master_port)
    runner.greenlet.join()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
