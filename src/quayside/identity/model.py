"""Identities, permission levels, resources, and the one table of what each level allows.

A grant gives a user or a group a :class:`Level` on one resource (an experiment or a
registered model). A caller's level on a resource is the highest of its own grants,
its groups' grants and the server's default for resources without a grant; an admin
has every level everywhere. :data:`ACTIONS` is the table the server's route rules,
the README and the UI all read.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum, StrEnum


class Level(IntEnum):
    """How much a caller may do to one resource; each level includes the ones below it."""

    NONE = 0
    READ = 1
    EDIT = 2
    MANAGE = 3

    @classmethod
    def parse(cls, text: str) -> Level:
        """``read``, ``edit``, ``manage`` or ``none`` (any case)."""
        try:
            return cls[text.strip().upper()]
        except KeyError:
            from quayside.errors import UsageError

            raise UsageError(f"permission must be one of none, read, edit, manage; not '{text}'") from None

    def __str__(self) -> str:
        return self.name.lower()


class ResourceKind(StrEnum):
    """What a grant can be on. Runs, their artifacts and logged models belong to their experiment;
    versions, stages, aliases, policies and load-test reports belong to their registered model."""

    EXPERIMENT = "experiment"
    MODEL = "model"


@dataclass(frozen=True)
class Resource:
    """One experiment (``key`` = its id, as text) or one registered model (``key`` = its name)."""

    kind: ResourceKind
    key: str

    def __str__(self) -> str:
        return f"{self.kind} '{self.key}'"


class PrincipalKind(StrEnum):
    USER = "user"
    SERVICE = "service"
    """A service account: tokens only, never a password or a UI session."""
    LOCAL = "local"
    """The single user of a server without authentication (loopback, no users)."""


@dataclass(frozen=True)
class Identity:
    """Who a request acts as, resolved once per request from its credentials."""

    name: str
    kind: PrincipalKind = PrincipalKind.USER
    is_admin: bool = False
    groups: frozenset[str] = field(default_factory=frozenset)
    user_id: int | None = None

    @classmethod
    def local(cls, name: str) -> Identity:
        """The caller of a server running without authentication: may do everything."""
        return cls(name=name, kind=PrincipalKind.LOCAL, is_admin=True)


# What each level allows, by resource kind: the one table the route rules, the README and the UI follow.
ACTIONS: dict[ResourceKind, dict[Level, tuple[str, ...]]] = {
    ResourceKind.EXPERIMENT: {
        Level.READ: (
            "see the experiment, its runs, params, metrics, tags and logged models",
            "download the runs' artifacts",
        ),
        Level.EDIT: (
            "create runs; log params, metrics, tags, inputs, artifacts and models to them",
            "end, rename and delete runs",
        ),
        Level.MANAGE: ("rename and delete the experiment", "grant and revoke permissions on it"),
    },
    ResourceKind.MODEL: {
        Level.READ: (
            "see the model, its versions, stages, aliases, audit log, promotion policy, load-test reports "
            "and build records",
            "download its packages",
        ),
        Level.EDIT: (
            "register versions; change descriptions and tags",
            "move versions between candidate, staging and archived; set and delete aliases",
            "store load-test reports",
            "store build records",
        ),
        Level.MANAGE: (
            "move a version to production",
            "set the promotion policy; delete versions and the model",
            "grant and revoke permissions on it",
        ),
    },
}
"""Anyone authenticated may create an experiment or a registered model, and gets ``manage`` on it.
Users, groups, service accounts, tokens and the auth audit log are for admins."""
