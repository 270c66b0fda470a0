"""Batching benchmark: `quayside serve` with adaptive batching on versus off, 64 single-row clients.

    .venv/bin/python loadtests/batching_benchmark.py [--quick]

See ``--help`` and loadtests/README.md; the code is in loadtests/serving_bench/batching.py.
"""

from serving_bench.batching import main
from serving_bench.processes import run_cli

if __name__ == "__main__":
    run_cli(main)
