#!/usr/bin/env bash
# The whole test suite on a fresh machine: create a virtual environment, install the
# dev dependencies, lint, check the import contracts, and run pytest.
#   QUAYSIDE_VENV          virtual environment to use or create   (default: .venv)
#   QUAYSIDE_TEST_WORKERS  parallel pytest processes (pytest-xdist) (default: 4; most tests wait on
#                          servers, containers and databases, so more processes than cores pay)
#   extra arguments go to pytest, e.g.  bash scripts/test.sh -k signature
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${QUAYSIDE_VENV:-.venv}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
echo "==> installing quayside[dev] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check --upgrade pip
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"

echo "==> the bridge tests' mlflow and bentoml venvs (in the background, under .cache/test-venvs)"
mkdir -p .cache && "$venv/bin/python" -m tests.venvs > .cache/test-venvs-ahead.log 2>&1 &
test_venvs=$!

echo "==> ruff"
"$venv/bin/ruff" check .
"$venv/bin/ruff" format --check .

echo "==> docker engine and base image (for the build and deploy tests)"
QUAYSIDE_TEST_BASE_IMAGE=$(bash scripts/docker-engine.sh | tail -n 1)
export QUAYSIDE_TEST_BASE_IMAGE

echo "==> OCI image registry on 127.0.0.1 (for the push and pull-by-digest tests)"
QUAYSIDE_TEST_OCI_REGISTRY=$(bash scripts/oci-registry.sh | tail -n 1)
export QUAYSIDE_TEST_OCI_REGISTRY

echo "==> Chromium (for the web UI's browser tests)"
QUAYSIDE_TEST_CHROMIUM=$(bash scripts/browser.sh | tail -n 1)
export QUAYSIDE_TEST_CHROMIUM

echo "==> import contracts"
"$venv/bin/lint-imports"

if ! wait "$test_venvs"; then
  echo "    could not build them ahead (see .cache/test-venvs-ahead.log); the tests that need them will try again"
fi

echo "==> pytest: in ${QUAYSIDE_TEST_WORKERS:-4} processes, then the tests marked serial on their own"
status=0
"$venv/bin/python" -m pytest -n "${QUAYSIDE_TEST_WORKERS:-4}" --dist loadfile -m "not serial" "$@" || status=$?
serial=0
"$venv/bin/python" -m pytest -m serial "$@" || serial=$?
# A selection (extra arguments) may hold no serial test: pytest's "nothing collected" (5) is no failure then.
if [ "$serial" -ne 0 ] && ! { [ "$serial" -eq 5 ] && [ "$#" -gt 0 ]; }; then
  status=$serial
fi
exit "$status"
