"""Smoke load test: serve a package here, load it briefly, fail on any request error (not on speed).

    python loadtests/smoke.py PACKAGE [--duration 10s] [--protocol v2|invocations]

The test suite runs it (tests/loadtesting/test_smoke.py) against a real server.
"""

from __future__ import annotations

import argparse
import subprocess
import sys


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package")
    parser.add_argument("--duration", default="10s")
    parser.add_argument("--protocol", default="v2")
    parser.add_argument("--out", default=None)
    args = parser.parse_args(argv)
    command = [
        sys.executable, "-m", "quayside", "loadtest", args.package, "--duration", args.duration,
        "--users", "8", "--spawn-rate", "8", "--protocol", args.protocol, "--slo", "error_rate<=0",
    ]  # fmt: skip
    if args.out:
        command += ["--out", args.out]
    return subprocess.run(command, check=False).returncode


if __name__ == "__main__":
    sys.exit(main())
