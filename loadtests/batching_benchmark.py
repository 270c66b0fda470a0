"""Batching benchmark: `quayside serve` with adaptive batching on versus off, 64 single-row clients.

    .venv/bin/python loadtests/batching_benchmark.py [--quick]

See ``--help`` and loadtests/README.md; the code is in loadtests/serving_bench/batching.py.
"""

import sys

from serving_bench.batching import main

if __name__ == "__main__":
    sys.exit(main())
