#!/usr/bin/env bash
# The whole test suite on a fresh machine: create a virtual environment, install the
# dev dependencies, lint, check the import contracts, and run pytest.
#   QUAYSIDE_VENV  virtual environment to use or create   (default: .venv)
#   extra arguments go to pytest, e.g.  bash scripts/test.sh -k signature
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${QUAYSIDE_VENV:-.venv}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
echo "==> installing quayside[dev] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"

echo "==> ruff"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .

echo "==> docker engine and base image (for the build and deploy tests)"
QUAYSIDE_TEST_BASE_IMAGE=$(bash scripts/docker-engine.sh | tail -n 1)
export QUAYSIDE_TEST_BASE_IMAGE

echo "==> Chromium (for the web UI's browser tests)"
QUAYSIDE_TEST_CHROMIUM=$(bash scripts/browser.sh | tail -n 1)
export QUAYSIDE_TEST_CHROMIUM

echo "==> import contracts"
"$venv/bin/lint-imports"

echo "==> pytest"
"$venv/bin/python" -m pytest "$@"
