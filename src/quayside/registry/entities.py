"""What the registry hands out: frozen dataclasses, never ORM rows, each with ``to_dict``/``from_dict``."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quayside.errors import UsageError

TAG_KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-./ ]{1,250}")
MAX_TAG_LENGTH = 5000
MAX_DESCRIPTION_LENGTH = 5000
MAX_REASON_LENGTH = 2000
MAX_VERSION = 2**31 - 1
"""Version numbers are 32-bit INTEGER columns: a larger number names no version (and no driver binds it)."""


def check_version(version: Any) -> int:
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version <= MAX_VERSION:
        raise UsageError(f"a model version is a whole number from 1 to {MAX_VERSION}, not {version!r}")
    return version


RETIRED_SLO_TAG = "quayside.slo"
"""Where older releases kept a model's SLO; migration 0005 moved it into the promotion policy."""


def check_tags(tags: Mapping[str, Any] | None) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in (tags or {}).items():
        if not isinstance(key, str) or not TAG_KEY_PATTERN.fullmatch(key):
            raise UsageError(f"tag key {key!r} is invalid: use 1 to 250 letters, digits, spaces and _ - . /")
        if key == RETIRED_SLO_TAG:
            raise UsageError(
                f"the '{RETIRED_SLO_TAG}' tag is no longer read: a model's SLO is part of its promotion "
                "policy; set it with: quayside registry policy set NAME --slo '...'"
            )
        text = str(value)
        if len(text) > MAX_TAG_LENGTH:
            raise UsageError(f"tag '{key}' is {len(text)} characters long; the limit is {MAX_TAG_LENGTH}")
        values[key] = text
    return values


def check_text(kind: str, text: str | None, limit: int) -> str | None:
    if text is not None and len(text) > limit:
        raise UsageError(f"the {kind} is {len(text)} characters long; the limit is {limit}")
    return text


@dataclass(frozen=True)
class RegisteredModel:
    """A named model: its description, tags, rules, aliases and newest version number."""

    name: str
    description: str
    tags: Mapping[str, str]
    allow_multiple_production: bool
    created_at: int
    updated_at: int
    latest_version: int
    aliases: Mapping[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "description": self.description,
            "tags": dict(self.tags),
            "allow_multiple_production": self.allow_multiple_production,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "latest_version": self.latest_version,
            "aliases": dict(self.aliases),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> RegisteredModel:
        return cls(
            name=str(data["name"]),
            description=str(data["description"]),
            tags=dict(data["tags"]),
            allow_multiple_production=bool(data["allow_multiple_production"]),
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            latest_version=int(data["latest_version"]),
            aliases={str(k): int(v) for k, v in data.get("aliases", {}).items()},
        )


@dataclass(frozen=True)
class ModelVersion:
    """One registered version: an immutable package copy, what its manifest says, and where it stands."""

    name: str
    version: int
    stage: str
    digest: str
    flavor: str
    signature: Mapping[str, Any]
    onnx_servable: bool
    source_run_id: str | None
    source: str
    description: str
    created_at: int
    updated_at: int
    deleted: bool = False
    aliases: tuple[str, ...] = ()
    tags: Mapping[str, str] = field(default_factory=dict)
    """The version's own tags (MLflow's model-version tags); the model's tags are on :class:`RegisteredModel`."""

    @property
    def uri(self) -> str:
        return f"models:/{self.name}/{self.version}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "stage": self.stage,
            "digest": self.digest,
            "flavor": self.flavor,
            "signature": dict(self.signature),
            "onnx_servable": self.onnx_servable,
            "source_run_id": self.source_run_id,
            "source": self.source,
            "description": self.description,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
            "deleted": self.deleted,
            "aliases": list(self.aliases),
            "tags": dict(self.tags),
            "uri": self.uri,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ModelVersion:
        return cls(
            name=str(data["name"]),
            version=int(data["version"]),
            stage=str(data["stage"]),
            digest=str(data["digest"]),
            flavor=str(data["flavor"]),
            signature=dict(data["signature"]),
            onnx_servable=bool(data["onnx_servable"]),
            source_run_id=data.get("source_run_id"),
            source=str(data["source"]),
            description=str(data.get("description", "")),
            created_at=int(data["created_at"]),
            updated_at=int(data["updated_at"]),
            deleted=bool(data.get("deleted", False)),
            aliases=tuple(data.get("aliases", ())),
            tags={str(k): str(v) for k, v in (data.get("tags") or {}).items()},
        )


@dataclass(frozen=True)
class AuditEntry:
    """One line of a model's history: what changed, from what to what, who did it, when, why, on what evidence.

    ``action`` is one of ``register``, ``transition``, ``alias_set``, ``alias_delete``, ``delete``,
    ``delete_model``, ``policy_set`` and ``rename`` (entered under both names; ``evidence`` holds
    ``{"from": old name, "to": new name}``). For alias entries ``from_value``/``to_value`` are version
    numbers (as text); otherwise they are stages. ``evidence`` is the registry's own: the load-test
    report a protected move was cleared by, or a policy's values before and after. ``override``
    marks an admin's move past the promotion policy.
    """

    id: int
    model: str
    version: int | None
    action: str
    alias: str | None
    from_value: str | None
    to_value: str | None
    actor: str
    timestamp: int
    reason: str
    evidence: Mapping[str, Any]
    override: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "action": self.action,
            "alias": self.alias,
            "from": self.from_value,
            "to": self.to_value,
            "actor": self.actor,
            "timestamp": self.timestamp,
            "reason": self.reason,
            "evidence": dict(self.evidence),
            "override": self.override,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> AuditEntry:
        return cls(
            id=int(data["id"]),
            model=str(data["model"]),
            version=None if data.get("version") is None else int(data["version"]),
            action=str(data["action"]),
            alias=data.get("alias"),
            from_value=data.get("from"),
            to_value=data.get("to"),
            actor=str(data["actor"]),
            timestamp=int(data["timestamp"]),
            reason=str(data.get("reason", "")),
            evidence=dict(data.get("evidence") or {}),
            override=bool(data.get("override", False)),
        )
