#!/usr/bin/env bash
# Profile `quayside serve` (or a baseline) under wrk load with py-spy: writes a flamegraph SVG,
# raw collapsed stacks and a `py-spy top`-like summary (with µs per request) to
#   loadtests/results/profile-SERVER/ (or --out DIR).
# Examples:
#   bash loadtests/profile_serving.sh                                # quayside, V2, 1 row, 64 connections
#   bash loadtests/profile_serving.sh --endpoint invocations
#   bash loadtests/profile_serving.sh --server handwritten --native
# Options: bash loadtests/profile_serving.sh --help
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python loadtests/profile_serving.py "$@"
