"""A real ``quayside server`` with authentication on, and the people who use it.

Users and tokens are made through :class:`IdentityStore` on the server's database before
it starts (as ``quayside admin create-user`` does), so the server has an admin to start
with; every other setup step goes through the server's API with those tokens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import httpx

from quayside.config import Settings
from quayside.identity.model import Level, Resource
from quayside.identity.store import IdentityStore
from tests.db.fixtures import Server

PASSWORD = "a long enough test password"


@dataclass
class AuthServer:
    """A server started with auth on (``QUAYSIDE_AUTH=true``), its store, and each user's token."""

    server: Server
    store: IdentityStore
    tokens: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str:
        return self.server.url

    def headers(self, user: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens[user]}"}

    def add_user(self, name: str, *, admin: bool = False, service: bool = False) -> str:
        """A user with :data:`PASSWORD` (no password for a service account) and one token."""
        self.store.create_user(name, password=None if service else PASSWORD, admin=admin, service=service)
        self.tokens[name] = self.store.create_token(name, name="test", actor="admin").token
        return self.tokens[name]

    def grant(self, user: str, resource: Resource, level: Level) -> None:
        self.store.grant(user, resource, level, actor="admin")

    def api(self, user: str) -> httpx.Client:
        return httpx.Client(base_url=self.url, headers=self.headers(user), timeout=30)

    def stop(self) -> None:
        self.server.stop()


def start_auth_server(home: Path, *, default_permission: str = "none", **settings: str) -> AuthServer:
    """``quayside server`` with auth on over a fresh SQLite database in ``home``, with an admin."""
    db_url = f"sqlite:///{home / 'quayside.db'}"
    store = IdentityStore.from_settings(Settings(home=home, db_url=db_url))
    auth = AuthServer(Server(home, db_url), store)
    auth.add_user("admin", admin=True)
    auth.server.settings = {
        "QUAYSIDE_AUTH": "true",
        "QUAYSIDE_AUTH_DEFAULT_PERMISSION": default_permission,
        **settings,
    }
    auth.server.start()
    return auth
