"""Profile `quayside serve` (or a baseline) under wrk load with py-spy; see profile_serving.sh and --help."""

import sys

from serving_bench.profiling import main

if __name__ == "__main__":
    sys.exit(main())
