#!/usr/bin/env bash
# Install Quayside and run the quickstart: train a scikit-learn model, save it as a
# package, convert it to ONNX with a parity check, and print its info.
#   QUAYSIDE_VENV   virtual environment to use or create   (default: .venv)
#   QUICKSTART_DIR  where the quickstart writes its files   (default: quickstart-output)
set -euo pipefail
cd "$(dirname "$0")/.."
venv=${QUAYSIDE_VENV:-.venv}
out=${QUICKSTART_DIR:-quickstart-output}

[ -x "$venv/bin/python" ] || python3 -m venv "$venv"
echo "==> installing quayside[sklearn] into $venv"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[sklearn]"

echo "==> training and saving a model"
"$venv/bin/python" examples/quickstart.py "$out/model"

echo "==> converting it to ONNX (the native model is a pickle we just made, so --trust)"
"$venv/bin/quayside" convert "$out/model" --trust

echo "==> package info"
"$venv/bin/quayside" model info "$out/model"
