"""Serving benchmark: `quayside serve` against hand-written FastAPI, BentoML and MLflow servers.

    .venv/bin/python loadtests/serving_benchmark.py [--quick] [--only quayside,handwritten,bentoml,mlflow]

See ``--help`` and loadtests/README.md; the code is in loadtests/serving_bench/.
"""

from serving_bench.processes import run_cli
from serving_bench.serving import main

if __name__ == "__main__":
    run_cli(main)
