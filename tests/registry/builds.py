"""Build record documents for registry tests: the shape ``quayside build`` sends, figures chosen by the test.

The registry judges a build's figures, not how they were measured, so tests about the
records and the policy state the figures they need; building and smoke-testing a real
image is the build command's own suite (it needs a Docker engine).
"""

from __future__ import annotations

import time
from typing import Any

from quayside.registry.builds import BuildRecord
from quayside.registry.client import RegistryClient

IMAGE_ID = "sha256:" + "ab" * 32
REPO_DIGEST = "127.0.0.1:5000/iris@sha256:" + "cd" * 32
BUDGET = "image_mb<=200,cold_start_s<=3"


def build_document(
    digest: str,
    *,
    size_bytes: int = 123_456_789,
    smoke: str = "passed",
    cold_start_s: float | None = 1.8,
    first_inference_ms: float | None = 12.5,
    detail: str = "2 rows matched the golden outputs over /invocations and V2",
    built_at: int | None = None,
    **fields: Any,
) -> dict[str, Any]:
    """A build of the package ``digest`` that passed its smoke test, unless the arguments say otherwise.

    ``smoke="skipped"`` (``--no-smoke``) measures nothing: its timings are None.
    """
    if smoke == "skipped":
        cold_start_s = first_inference_ms = None
    document = {
        "package_digest": digest,
        "tag": "quayside/iris:1",
        "image_id": IMAGE_ID,
        "size_bytes": size_bytes,
        "base_image": "quayside/python:3.11-bookworm",
        "quayside_version": "0.1.0",
        "repo_digest": None,
        "smoke": {
            "status": smoke,
            "cold_start_s": cold_start_s,
            "first_inference_ms": first_inference_ms,
            "detail": detail,
        },
        "budget": None,
        "built_at": int(time.time() * 1000) if built_at is None else built_at,
    }
    return document | fields


def add_build(registry: RegistryClient, name: str, version: int, **kwargs: Any) -> BuildRecord:
    """Record a build of ``name``/``version``'s own package (``digest=`` names another package)."""
    digest = kwargs.pop("digest", None) or registry.get_version(name, version).digest
    return registry.add_build_record(name, version, build_document(digest, **kwargs))
