#!/usr/bin/env bash
# Install Quayside and run the quickstart: train a scikit-learn model as a tracked run,
# register it and stage it, save it as a package, convert it to ONNX with a parity check,
# print its info, then set the model's promotion policy (its SLO), load-test the staged version,
# store the report in the registry and promote it to production if the registry finds it passes.
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
echo "==> setting the promotion policy of breast-cancer: production needs a load test meeting this SLO"
"$venv/bin/quayside" registry policy set breast-cancer --slo "p95_ms<=500,error_rate<=0.01" \
  --reason "quickstart: a laptop-sized SLO"
echo "==> load-testing breast-cancer version $version and promoting it if it meets its SLO"
# 10 s is the policy's default minimum duration: a shorter test would not qualify.
"$venv/bin/quayside" promote breast-cancer "$version" --to production --duration 10s --users 4 \
  --reason "quickstart: passed its load test"
