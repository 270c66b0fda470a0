"""One rule picks a backend from a tracking or registry URI: a server, a database URL, or the local store."""

from __future__ import annotations

from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.errors import UsageError
from quayside.registry import client as registry_client
from quayside.registry.rest import RestRegistry
from quayside.registry.store import RegistryStore
from quayside.tracking import client as tracking_client
from quayside.tracking.rest import RestBackend
from quayside.tracking.store import TrackingStore


def test_a_tracking_uri_names_a_server_a_database_or_nothing(tmp_path: Path):
    settings = Settings(home=tmp_path)
    assert isinstance(tracking_client.backend_for(settings, "http://127.0.0.1:9"), RestBackend)
    local = tracking_client.backend_for(settings)
    assert isinstance(local, TrackingStore) and local.url == settings.database_url
    other = f"sqlite:///{tmp_path / 'other.db'}"
    chosen = tracking_client.backend_for(settings, other)
    assert isinstance(chosen, TrackingStore) and chosen.url == other
    assert (
        chosen.artifacts.store.root == settings.artifact_dir
        and chosen.artifacts.work_dir == settings.artifact_dir
    )


def test_a_registry_uri_follows_the_same_rule(tmp_path: Path):
    settings = Settings(home=tmp_path, tracking_uri="http://127.0.0.1:9")
    assert isinstance(registry_client.backend_for(settings), RestRegistry)
    other = f"sqlite:///{tmp_path / 'other.db'}"
    chosen = registry_client.backend_for(settings, other)
    assert isinstance(chosen, RegistryStore) and chosen.url == other


@pytest.mark.parametrize(
    ("backend_for", "what"),
    [(tracking_client.backend_for, "tracking"), (registry_client.backend_for, "registry")],
)
def test_a_uri_that_is_neither_a_server_nor_a_database_is_refused_the_same_way(backend_for, what, tmp_path):
    with pytest.raises(UsageError) as refused:
        backend_for(Settings(home=tmp_path), "localhost:5000")
    assert refused.value.message == (
        f"{what} URI 'localhost:5000' is neither http(s)://host:port nor a database URL (sqlite:///path)"
    )
