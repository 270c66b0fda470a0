"""Profile `quayside serve` (or a baseline) under wrk load with py-spy; see profile_serving.sh and --help."""

from serving_bench.processes import run_cli
from serving_bench.profiling import main

if __name__ == "__main__":
    run_cli(main)
