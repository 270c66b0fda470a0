"""Artifact storage: objects under keys in a local directory or an S3 bucket, streamed and digested.

Beside :mod:`quayside.db` in the layers: components use it, it imports no component.
``open_artifact_store(settings_root)`` turns an artifact root into a store,
``check_artifact_store`` proves it usable at start; boto3 is imported only by
:mod:`quayside.artifacts.s3`, and only when an S3 store is made.
"""

from __future__ import annotations

from quayside.artifacts.keys import check_key, check_prefix
from quayside.artifacts.local import LocalArtifactStore
from quayside.artifacts.roots import check_artifact_store, open_artifact_store
from quayside.artifacts.s3 import S3ArtifactStore
from quayside.artifacts.store import ArtifactStore, ObjectInfo

__all__ = [
    "ArtifactStore",
    "LocalArtifactStore",
    "ObjectInfo",
    "S3ArtifactStore",
    "check_artifact_store",
    "check_key",
    "check_prefix",
    "open_artifact_store",
]
