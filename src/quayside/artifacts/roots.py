"""Artifact roots: from the text of ``QUAYSIDE_ARTIFACT_ROOT`` to a store, and the check at start.

A root is a directory (``/data/artifacts``, ``~/q``, ``file:///data/artifacts``) or an S3
bucket with an optional prefix (``s3://bucket/prefix``); anything else is refused in one
line, instead of becoming a local folder named ``s3:`` or ``gs:``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit

from quayside.artifacts.keys import check_prefix
from quayside.artifacts.local import LocalArtifactStore
from quayside.artifacts.s3 import S3ArtifactStore
from quayside.artifacts.store import ArtifactStore
from quayside.errors import UsageError

SUPPORTED = "a directory path, file:///absolute/path or s3://bucket[/prefix]"
ENDPOINT_VARIABLES = ("QUAYSIDE_S3_ENDPOINT_URL", "AWS_ENDPOINT_URL")
"""Where an S3 root's endpoint comes from, first set wins; neither set: boto3's default (AWS)."""

_SCHEME = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]*):")


def open_artifact_store(root: str | Path, *, environ: Mapping[str, str] = os.environ) -> ArtifactStore:
    """The store an artifact root names; a :class:`UsageError` for a root it cannot be."""
    if isinstance(root, Path):
        return _local(root, str(root))
    if not isinstance(root, str) or not root.strip():
        raise UsageError(f"the artifact root is empty: use {SUPPORTED}")
    scheme = _SCHEME.match(root)
    if scheme is None:
        return _local(Path(root), root)
    name = scheme.group(1).lower()
    if not root[scheme.end() :].startswith("//"):
        raise UsageError(f"the artifact root starts with '{name}:' but is not a URI: use {SUPPORTED}")
    if name == "file":
        return _file(root)
    if name == "s3":
        return _s3(root, environ)
    raise UsageError(f"artifact roots of the scheme '{name}://' are not supported: use {SUPPORTED}")


def check_artifact_store(store: ArtifactStore) -> ArtifactStore:
    """``store`` once proven usable (the directory writable, the bucket reachable), else one-line error."""
    store.check()
    return store


def _local(path: Path, text: str) -> LocalArtifactStore:
    # A root like s3://b read into a Path becomes 's3:/b': refuse it rather than make a folder 's3:'.
    first = path.parts[0] if path.parts else ""
    if _SCHEME.fullmatch(first):
        raise UsageError(
            f"the artifact root starts with '{first}', a URI scheme read as a directory: use {SUPPORTED}"
        )
    return LocalArtifactStore(Path(text).expanduser())


def _file(root: str) -> LocalArtifactStore:
    parts = urlsplit(root)
    if parts.netloc not in ("", "localhost") or not parts.path.startswith("/"):
        raise UsageError(
            "a file:// artifact root names an absolute path on this machine: file:///data/artifacts"
        )
    if parts.query or parts.fragment:
        raise UsageError("a file:// artifact root takes no query or fragment ('?' or '#')")
    return LocalArtifactStore(Path(unquote(parts.path)))


def _s3(root: str, environ: Mapping[str, str]) -> S3ArtifactStore:
    parts = urlsplit(root)
    if not parts.netloc:
        raise UsageError("an s3:// artifact root names a bucket: s3://bucket[/prefix]")
    if "@" in parts.netloc or ":" in parts.netloc:
        raise UsageError(
            "an s3:// artifact root holds only a bucket and a prefix; give credentials through "
            "AWS_* variables or a profile, and the endpoint through QUAYSIDE_S3_ENDPOINT_URL"
        )
    if parts.query or parts.fragment:
        raise UsageError("an s3:// artifact root takes no query or fragment ('?' or '#')")
    prefix = unquote(parts.path).strip("/")
    try:
        check_prefix(prefix)
    except UsageError as e:
        raise UsageError(f"the prefix of an s3:// artifact root must be a plain path: {e.message}") from None
    endpoint = next((environ[name] for name in ENDPOINT_VARIABLES if environ.get(name)), None)
    return S3ArtifactStore(parts.netloc, prefix, endpoint_url=endpoint)
