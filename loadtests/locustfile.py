"""The project's own Locust scenario: users generated from a model package's signature and example.

    QUAYSIDE_LOADTEST_MODEL=path/to/package quayside serve path/to/package --port 8080 &
    QUAYSIDE_LOADTEST_MODEL=path/to/package \\
        locust -f loadtests/locustfile.py --host http://127.0.0.1:8080 --headless -u 32 -r 8 -t 30s

QUAYSIDE_LOADTEST_PROTOCOL (v2 or invocations) and QUAYSIDE_LOADTEST_ROWS pick the
request kind and rows per request. ``quayside loadtest`` runs the same users with
SLO verdicts and reports; this file is for the ``locust`` CLI and its web UI.
"""

from __future__ import annotations

import os

from quayside.cli.loadtest import package_inputs
from quayside.loadtesting.payloads import build_payloads
from quayside.loadtesting.users import user_class

_model = os.environ.get("QUAYSIDE_LOADTEST_MODEL")
if not _model:
    raise SystemExit("set QUAYSIDE_LOADTEST_MODEL to the package (or model URI) being served")
_, _name, _schema, _example = package_inputs(_model)
_payloads = build_payloads(
    _schema,
    _example,
    protocol=os.environ.get("QUAYSIDE_LOADTEST_PROTOCOL", "v2"),  # type: ignore[arg-type]
    model_name=_name,
    rows=int(os.environ.get("QUAYSIDE_LOADTEST_ROWS", "1")),
)
# The host comes from locust's --host; an empty one here lets it override.
SignatureUser = user_class(_payloads, "")
