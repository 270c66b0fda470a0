#!/usr/bin/env bash
# Install Quayside and run the quickstart: train a scikit-learn model as a tracked run,
# register it and stage it, save it as a package, convert it to ONNX with a parity check,
# print its info, then load-test the staged version and promote it to production through
# the SLO gate.
#   QUAYSIDE_VENV   virtual environment to use or create   (default: .venv)
#   QUICKSTART_DIR  where the quickstart writes its files   (default: quickstart-output)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${QUAYSIDE_VENV:-.venv}
out=${QUICKSTART_DIR:-quickstart-output}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
echo "==> installing quayside[sklearn,loadtest] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[sklearn,loadtest]"

echo "==> training and saving a model"
"$venv/bin/python" examples/quickstart.py "$out/model"

echo "==> converting it to ONNX (the native model is a pickle we just made, so --trust)"
"$venv/bin/quayside" convert "$out/model" --trust

echo "==> package info"
"$venv/bin/quayside" model info "$out/model"

version=$(cat "$out/registered-version")
echo "==> load-testing breast-cancer version $version and promoting it if it meets its SLO"
"$venv/bin/quayside" registry slo set breast-cancer "p95_ms<=500,error_rate<=0.01"
"$venv/bin/quayside" promote breast-cancer "$version" --to production --duration 5s --users 4 \
  --reason "quickstart: passed its load test"
