"""What the smoke test adds to ``quayside build`` on a cached rebuild of the ONNX RandomForest image.

    python benchmarks/build_smoke.py --base-image quayside/python:3.11-bookworm [--repeats 3]

Needs a Docker engine (``bash scripts/docker-engine.sh`` starts one and makes the base image).
A RandomForest trained on the iris data is saved with its ONNX model and built once to fill
the cache; then ``quayside build`` runs ``--repeats`` times with the smoke test and as many
times with ``--no-smoke``, alternating, each from a warm cache (only the label layer changes).
The medians of the wall times and their difference (the smoke step's added time) are printed,
with the cold start and first-inference figures the smoke test reported.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

TARGET_S = 10.0


def build(package: Path, tag: str, base_image: str, home: Path, *, smoke: bool) -> tuple[float, str]:
    command = [sys.executable, "-m", "quayside", "build", str(package), "-t", tag, "--base-image", base_image]
    command += [] if smoke else ["--no-smoke"]
    started = time.perf_counter()
    result = subprocess.run(
        command, capture_output=True, text=True, env={**os.environ, "QUAYSIDE_HOME": str(home)}, check=False
    )
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"quayside build failed:\n{result.stderr[-3000:]}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--base-image", default="quayside/python:3.11-bookworm")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", type=Path, default=None, help="QUAYSIDE_HOME (keeps the wheelhouse)")
    args = parser.parse_args()

    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.ensemble import RandomForestClassifier

    import quayside

    with tempfile.TemporaryDirectory(prefix="quayside-bench-") as scratch:
        home = args.home or Path(scratch) / "home"
        package = Path(scratch) / "rf"
        X, y = load_iris(return_X_y=True)
        X = X.astype(np.float32)
        model = RandomForestClassifier(n_estimators=50, random_state=0).fit(X, y)
        quayside.save_model(model, package, input_example=X[:5], to_onnx=True, name="iris-rf")
        tag = f"quayside-bench/iris-rf:{uuid.uuid4().hex[:8]}"
        print(f"warming the cache: {tag}")
        build(package, tag, args.base_image, home, smoke=False)
        with_smoke: list[float] = []
        without: list[float] = []
        figures: list[str] = []
        for _ in range(args.repeats):
            seconds, stdout = build(package, tag, args.base_image, home, smoke=True)
            with_smoke.append(seconds)
            figures += re.findall(r"smoke test passed: (cold start [^;]+)", stdout)
            without.append(build(package, tag, args.base_image, home, smoke=False)[0])
        subprocess.run(["docker", "rmi", "-f", tag], capture_output=True, check=False)
    added = statistics.median(with_smoke) - statistics.median(without)
    print(
        f"cached rebuild with the smoke test:    median {statistics.median(with_smoke):.2f} s  {with_smoke}"
    )
    print(f"cached rebuild with --no-smoke:        median {statistics.median(without):.2f} s  {without}")
    print(f"the smoke step adds {added:.2f} s (target under {TARGET_S:g} s)")
    for line in figures:
        print(f"  {line}")


if __name__ == "__main__":
    main()
