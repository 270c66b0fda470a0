"""The one rule for artifact keys, so a key means the same object in every store.

A key is a POSIX relative path: components joined by ``/``, none empty, ``.`` or
``..``; no leading ``/`` or ``~``, no backslash, no control character (NUL
included), at most :data:`MAX_KEY_LENGTH` characters and :data:`MAX_COMPONENT_BYTES`
UTF-8 bytes a component (what the common file systems hold; S3 takes 1024 bytes a
key). Two names are reserved for the stores' own bookkeeping and refused as
keys: the scratch folder at the top (:data:`quayside.scratch.SCRATCH_DIR`, where
writes in progress lie) and the digest-record suffix (:data:`RECORD_SUFFIX`).
Both stores refuse the same keys, so an artifact root can move between them.
"""

from __future__ import annotations

import unicodedata

from quayside.errors import UsageError
from quayside.names import shown
from quayside.scratch import SCRATCH_DIR

MAX_KEY_LENGTH = 1024
"""The longest key, in characters."""
MAX_COMPONENT_BYTES = 255
"""The longest component of a key, in UTF-8 bytes."""
RECORD_SUFFIX = ".quayside-sha256"
"""The suffix of a local object's digest record (:mod:`quayside.artifacts.local`); no key component ends so."""


def check_key(key: object) -> str:
    """``key`` if it is a valid artifact key, else a :class:`UsageError` that says which rule it breaks."""
    if not isinstance(key, str):
        raise UsageError(f"an artifact key must be text, not {type(key).__name__}")
    if not key:
        raise UsageError("an artifact key is empty")
    if "\\" in key:
        raise UsageError(f"artifact key {shown(key)} holds a backslash; keys are POSIX paths joined by '/'")
    if key.startswith(("/", "~")):
        raise UsageError(f"artifact key {shown(key)} is absolute; keys are relative to the artifact root")
    if len(key) > MAX_KEY_LENGTH:
        raise UsageError(
            f"artifact key {shown(key)} is {len(key)} characters long; the limit is {MAX_KEY_LENGTH}"
        )
    for character in key:
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise UsageError(f"artifact key {shown(key)} holds the control character U+{ord(character):04X}")
    parts = key.split("/")
    for part in parts:
        _check_component(key, part)
    if parts[0] == SCRATCH_DIR:
        raise UsageError(
            f"artifact key {shown(key)} is inside '{SCRATCH_DIR}', reserved for writes in progress"
        )
    return key


def check_prefix(prefix: object) -> str:
    """A folder of keys: ``""`` for all of them, else a key (a trailing ``/`` is dropped)."""
    if prefix == "":
        return ""
    if isinstance(prefix, str) and prefix.endswith("/") and not prefix.endswith("//"):
        prefix = prefix[:-1]
    return check_key(prefix)


def join(prefix: str, key: str) -> str:
    """``key`` inside the folder ``prefix`` (either may be ``""``)."""
    return f"{prefix}/{key}" if prefix and key else prefix or key


def _check_component(key: str, part: str) -> None:
    if part in ("", ".", ".."):
        what = "an empty component" if not part else f"a '{part}' component"
        raise UsageError(f"artifact key {shown(key)} has {what}; keys are plain relative paths")
    if len(part.encode()) > MAX_COMPONENT_BYTES:
        raise UsageError(
            f"artifact key {shown(key)} has a component of {len(part.encode())} bytes; "
            f"the limit is {MAX_COMPONENT_BYTES}"
        )
    if part.endswith(RECORD_SUFFIX):
        raise UsageError(
            f"artifact key {shown(key)} ends a component with '{RECORD_SUFFIX}', which is reserved"
        )
