"""Build records: what ``quayside build`` made of a registered version, checked on the way in, handed out judged.

After building and smoke-testing an image of ``models:/NAME/VERSION``, ``quayside build``
sends the registry a document like::

    {"package_digest": "<64 hex>", "tag": "quayside/iris:1", "image_id": "sha256:<64 hex>",
     "size_bytes": 123456789, "base_image": "quayside/python:3.11-bookworm", "quayside_version": "0.1.0",
     "repo_digest": "127.0.0.1:5000/iris@sha256:<64 hex>" or null,
     "smoke": {"status": "passed", "cold_start_s": 1.8, "first_inference_ms": 12.5, "detail": "..."},
     "budget": "image_mb<=200,cold_start_s<=3" or null, "built_at": <ms since the epoch>}

:func:`check_build_document` keeps what the record holds and refuses a malformed document
with a :class:`~quayside.errors.UsageError` naming the field. The record is a row only (the
image lives in a Docker engine or a registry, not here); whether it passes is decided by the
policy in force when it is read (:func:`quayside.registry.policy.judge_build`), never by the
``budget`` it was built against, which the record keeps for people reading the history.
"""

from __future__ import annotations

import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quayside.errors import UsageError
from quayside.registry.policy import SMOKE_STATUSES, BuildFacts, Judgement
from quayside.slo import format_slo, parse_budget

BUILD_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")
IMAGE_ID_PATTERN = re.compile(r"sha256:[0-9a-f]{64}")
REPO_DIGEST_PATTERN = re.compile(r"[A-Za-z0-9._:/\-]{1,400}@sha256:[0-9a-f]{64}")
CONTROL_CHARACTERS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")
"""Kept out of a smoke test's detail (lines and tabs stay): NUL is no text to a database, escapes none to a terminal."""
MAX_REFERENCE_LENGTH = 512
"""Longest tag, base image or repository digest kept (Docker's own limit on a name is 255 characters)."""
MAX_QUAYSIDE_VERSION_LENGTH = 64
MAX_DETAIL_LENGTH = 4000
MAX_BUDGET_LENGTH = 1000
MAX_SIZE_BYTES = 10**15
MAX_SECONDS = 86_400.0
"""Timings above a day are not a measurement but a mistake."""
MAX_TIME_MS = 2**53
BYTES_PER_MB = 1_000_000
"""``image_mb`` counts 10^6 bytes, as ``docker images`` does."""


def new_build_id() -> str:
    return uuid.uuid4().hex[:16]


def check_build_id(build_id: str) -> str:
    if not isinstance(build_id, str) or not BUILD_ID_PATTERN.fullmatch(build_id):
        raise UsageError(f"build id {build_id!r} is invalid: use 1 to 64 letters, digits, '_' and '-'")
    return build_id


@dataclass(frozen=True)
class BuildRecord:
    """One stored build of a version: the image, its smoke test, and how the policy in force judges it."""

    id: str
    model: str
    version: int
    package_digest: str
    tag: str
    image_id: str
    size_bytes: int
    base_image: str
    quayside_version: str
    repo_digest: str | None
    smoke: str
    """``passed``, ``failed`` or ``skipped`` (built with ``--no-smoke``)."""
    cold_start_s: float | None
    first_inference_ms: float | None
    smoke_detail: str
    budget: str | None
    """The budget ``quayside build`` judged the image against when it built it (canonical text)."""
    built_at: int
    recorded_at: int
    recorded_by: str
    judgement: Judgement | None = field(default=None, compare=False)

    @property
    def passed(self) -> bool | None:
        """Whether the build qualifies under the policy in force (None when it was not judged)."""
        return None if self.judgement is None else self.judgement.qualifies

    @property
    def reference(self) -> str:
        """What to pull or run: the repository digest when the image was pushed, else its local tag."""
        return self.repo_digest or self.tag

    def figures(self) -> dict[str, float | None]:
        """The measured quantities a budget bounds (None where nothing was measured)."""
        return {
            "image_mb": self.size_bytes / BYTES_PER_MB,
            "cold_start_s": self.cold_start_s,
            "first_inference_ms": self.first_inference_ms,
        }

    def facts(self) -> BuildFacts:
        return BuildFacts(
            id=self.id,
            package_digest=self.package_digest,
            smoke=self.smoke,
            smoke_detail=self.smoke_detail,
            figures=self.figures(),
        )

    def to_dict(self) -> dict[str, Any]:
        judged = self.judgement.to_dict() if self.judgement is not None else {}
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "package_digest": self.package_digest,
            "tag": self.tag,
            "image_id": self.image_id,
            "size_bytes": self.size_bytes,
            "base_image": self.base_image,
            "quayside_version": self.quayside_version,
            "repo_digest": self.repo_digest,
            "reference": self.reference,
            "smoke": self.smoke,
            "cold_start_s": self.cold_start_s,
            "first_inference_ms": self.first_inference_ms,
            "smoke_detail": self.smoke_detail,
            "budget": self.budget,
            "figures": self.figures(),
            "built_at": self.built_at,
            "recorded_at": self.recorded_at,
            "recorded_by": self.recorded_by,
            "passed": self.passed,
            "verdict": judged.get("verdict"),
            "qualifies": judged.get("qualifies"),
            "problems": judged.get("problems", []),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> BuildRecord:
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            version=int(data["version"]),
            package_digest=str(data["package_digest"]),
            tag=str(data["tag"]),
            image_id=str(data["image_id"]),
            size_bytes=int(data["size_bytes"]),
            base_image=str(data["base_image"]),
            quayside_version=str(data["quayside_version"]),
            repo_digest=data.get("repo_digest"),
            smoke=str(data["smoke"]),
            cold_start_s=_optional_float(data.get("cold_start_s")),
            first_inference_ms=_optional_float(data.get("first_inference_ms")),
            smoke_detail=str(data.get("smoke_detail") or ""),
            budget=data.get("budget"),
            built_at=int(data["built_at"]),
            recorded_at=int(data["recorded_at"]),
            recorded_by=str(data["recorded_by"]),
            judgement=Judgement.from_dict(data),
        )


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


# --- the document quayside build sends -----------------------------------------------------------


@dataclass(frozen=True)
class CheckedBuild:
    """A build document reduced to what the record keeps, each field checked."""

    package_digest: str
    tag: str
    image_id: str
    size_bytes: int
    base_image: str
    quayside_version: str
    repo_digest: str | None
    smoke: str
    cold_start_s: float | None
    first_inference_ms: float | None
    smoke_detail: str
    budget: str | None
    built_at: int


def _fail(what: str) -> UsageError:
    return UsageError(f"the build record {what}")


def _text(document: Mapping[str, Any], key: str, limit: int) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not value.strip():
        raise _fail(f"has no text '{key}' (got {value!r})")
    if len(value) > limit:
        raise _fail(f"field '{key}' is {len(value)} characters long; the limit is {limit}")
    if any(ch.isspace() or not ch.isprintable() for ch in value):
        raise _fail(f"field '{key}' must not hold spaces or control characters, not {value!r}")
    return value


def _matching(document: Mapping[str, Any], key: str, pattern: re.Pattern[str], shape: str) -> str:
    value = document.get(key)
    if not isinstance(value, str) or not pattern.fullmatch(value):
        shown = value if not isinstance(value, str) or len(value) <= 80 else value[:77] + "..."
        raise _fail(f"field '{key}' must be {shape}, not {shown!r}")
    return value


def _whole(document: Mapping[str, Any], key: str, low: int, high: int) -> int:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"has no number '{key}' (got {value!r})")
    if value != int(value) or not low <= value <= high:
        raise _fail(f"field '{key}' must be a whole number from {low} to {high}, not {value!r}")
    return int(value)


def _timing(smoke: Mapping[str, Any], key: str, limit: float) -> float | None:
    value = smoke.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"field 'smoke.{key}' must be a number or null, not {value!r}")
    if not 0 <= value <= limit:
        raise _fail(f"field 'smoke.{key}' must be from 0 to {limit:g}, not {value!r}")
    return float(value)


def _smoke(document: Mapping[str, Any]) -> tuple[str, float | None, float | None, str]:
    smoke = document.get("smoke")
    if not isinstance(smoke, Mapping):
        raise _fail("has no 'smoke' object (its status, cold_start_s, first_inference_ms and detail)")
    status = smoke.get("status")
    if status not in SMOKE_STATUSES:
        raise _fail(f"field 'smoke.status' must be one of {', '.join(SMOKE_STATUSES)}, not {status!r}")
    cold_start_s = _timing(smoke, "cold_start_s", MAX_SECONDS)
    first_inference_ms = _timing(smoke, "first_inference_ms", MAX_SECONDS * 1000)
    # A package without an input example is smoke-tested for readiness only: no first inference.
    if status == "passed" and cold_start_s is None:
        raise _fail("says the smoke test passed but gives no 'smoke.cold_start_s'")
    detail = smoke.get("detail", "")
    if detail is None:
        detail = ""
    if not isinstance(detail, str):
        raise _fail(f"field 'smoke.detail' must be text, not {detail!r}")
    if len(detail) > MAX_DETAIL_LENGTH:
        raise _fail(
            f"field 'smoke.detail' is {len(detail)} characters long; the limit is {MAX_DETAIL_LENGTH}"
        )
    # A container's log in the detail may carry colour codes: they are replaced, not a reason to refuse.
    return status, cold_start_s, first_inference_ms, CONTROL_CHARACTERS.sub("\ufffd", detail)


def _repo_digest(document: Mapping[str, Any]) -> str | None:
    if document.get("repo_digest") is None:
        return None
    value = _matching(
        document, "repo_digest", REPO_DIGEST_PATTERN, "REPOSITORY@sha256:<64 hex digits> or null"
    )
    if len(value) > MAX_REFERENCE_LENGTH:
        raise _fail(
            f"field 'repo_digest' is {len(value)} characters long; the limit is {MAX_REFERENCE_LENGTH}"
        )
    return value


def _budget(document: Mapping[str, Any]) -> str | None:
    value = document.get("budget")
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > MAX_BUDGET_LENGTH:
        raise _fail(f"field 'budget' must be budget text of at most {MAX_BUDGET_LENGTH} characters or null")
    try:
        return format_slo(parse_budget(value))
    except UsageError as error:
        raise _fail(f"field 'budget' is not a budget: {error}") from None


def check_build_document(document: Any, *, model: str, version: int) -> CheckedBuild:
    """The fields of a build record of ``model`` version ``version``; a :class:`UsageError` naming a bad one."""
    if not isinstance(document, Mapping):
        raise _fail(f"of version {version} of '{model}' must be a JSON object")
    status, cold_start_s, first_inference_ms, detail = _smoke(document)
    return CheckedBuild(
        package_digest=_matching(
            document, "package_digest", DIGEST_PATTERN, "a package's sha256 (64 hex digits)"
        ),
        tag=_text(document, "tag", MAX_REFERENCE_LENGTH),
        image_id=_matching(document, "image_id", IMAGE_ID_PATTERN, "sha256:<64 hex digits>"),
        size_bytes=_whole(document, "size_bytes", 1, MAX_SIZE_BYTES),
        base_image=_text(document, "base_image", MAX_REFERENCE_LENGTH),
        quayside_version=_text(document, "quayside_version", MAX_QUAYSIDE_VERSION_LENGTH),
        repo_digest=_repo_digest(document),
        smoke=status,
        cold_start_s=cold_start_s,
        first_inference_ms=first_inference_ms,
        smoke_detail=detail,
        budget=_budget(document),
        built_at=_whole(document, "built_at", 0, MAX_TIME_MS),
    )
