"""Version numbering under concurrency: 20 processes registering the same new name at once."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

from quayside.registry.store import RegistryStore
from tests.registry.conftest import unique

PROCESSES = 20


def _register(url: str, artifacts: str, name: str, package: str, start: object, results: object) -> None:
    try:
        store = RegistryStore(url, Path(artifacts))
        start.wait(timeout=60)  # type: ignore[attr-defined]
        version = store.register_version(name, Path(package), actor="racer").version
        results.put(("ok", version))  # type: ignore[attr-defined]
    except BaseException as e:
        results.put(("error", f"{type(e).__name__}: {e}"))  # type: ignore[attr-defined]


def register_at_once(url: str, artifacts: Path, name: str, package: Path) -> list[tuple[str, object]]:
    """Fork 20 processes (imports already paid), let them open their own connections, then release them together."""
    RegistryStore(url, artifacts)  # migrated before the race, so the race is about numbering only
    context = multiprocessing.get_context("fork")
    start = context.Barrier(PROCESSES)
    results = context.Queue()
    processes = [
        context.Process(target=_register, args=(url, str(artifacts), name, str(package), start, results))
        for _ in range(PROCESSES)
    ]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=120) for _ in processes]
    for process in processes:
        process.join(timeout=60)
    assert [p.exitcode for p in processes] == [0] * PROCESSES
    return outcomes


def test_twenty_processes_registering_one_new_name_get_twenty_consecutive_numbers(
    database_url, tmp_path, packages
):
    name = unique("race")
    outcomes = register_at_once(database_url, tmp_path / "artifacts", name, packages[0])

    assert [kind for kind, _ in outcomes] == ["ok"] * PROCESSES, outcomes
    assert sorted(number for _, number in outcomes) == list(range(1, PROCESSES + 1))  # type: ignore[type-var]
    store = RegistryStore(database_url, tmp_path / "artifacts")
    versions = store.list_versions(name)
    assert [v.version for v in versions] == list(range(1, PROCESSES + 1))
    assert store.get_model(name).latest_version == PROCESSES
    assert len({store.package_dir(name, v.version) for v in versions}) == PROCESSES
    assert [e.action for e in store.history(name)] == ["register"] * PROCESSES
