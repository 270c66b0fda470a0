"""``quayside.Client`` and ``quayside.RegistryClient`` are classes defined in a module, so they type-check."""

from __future__ import annotations

import importlib
import inspect
import subprocess
import sys
from pathlib import Path

import pytest

from quayside.config import Settings


@pytest.mark.parametrize("name", ["Client", "RegistryClient"])
def test_the_public_client_is_a_class_its_module_defines(name):
    import quayside

    cls = getattr(quayside, name)
    assert isinstance(cls, type)
    module = importlib.import_module(cls.__module__)
    assert cls.__module__ == "quayside.compose.clients"
    assert getattr(module, cls.__qualname__) is cls
    assert inspect.getsourcefile(cls) == inspect.getsourcefile(module)
    assert f"class {name}(" in Path(inspect.getsourcefile(module)).read_text()


def test_from_quayside_import_client_in_a_fresh_interpreter_names_its_defining_module():
    code = (
        "import importlib, quayside; from quayside import Client, RegistryClient\n"
        "for cls in (Client, RegistryClient):\n"
        "    assert getattr(importlib.import_module(cls.__module__), cls.__qualname__) is cls\n"
        "print(Client.__module__, Client.__qualname__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.split() == ["quayside.compose.clients", "Client"]


def test_the_clients_extend_trackings_and_the_registrys_and_share_one_store(tmp_path):
    from quayside import Client, RegistryClient
    from quayside.registry.client import RegistryClient as ComponentRegistryClient
    from quayside.tracking.client import Client as TrackingClient

    assert issubclass(Client, TrackingClient) and issubclass(RegistryClient, ComponentRegistryClient)
    client = Client(settings=Settings(home=tmp_path / "home"))
    assert isinstance(client.registry, RegistryClient)
    assert client.registry is client.registry
    assert client.registry.settings is client.settings
    assert client.registry.run_artifact_path is not None  # runs:/ URIs resolve through tracking
