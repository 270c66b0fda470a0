"""Orphans are the old objects no reference covers: listed by a dry run, removed otherwise."""

from __future__ import annotations

import io
from datetime import timedelta

import pytest

from quayside.artifacts.gc import delete_orphans, find_orphans

KEYS = [
    "registry/iris/kept1/quayside.yaml",
    "registry/iris/kept1/model.onnx",
    "registry/iris/orphan/quayside.yaml",
    "registry/iris/orphan/model.onnx",
    "registry/wine/orphan/model.onnx",
    "runs/abc/model.bin",
    "loadtests/iris/1/r1/report.json",
]
REFERENCED = ["registry/iris/kept1", "runs/abc/model.bin", "registry/wine/orphan/other-file"]


@pytest.fixture
def store(subject):
    store = subject.store
    for key in KEYS:
        store.put(key, io.BytesIO(key.encode()))
    return store


def later(store):
    """A moment at which every object is older than the default minimum age."""
    return max(info.modified for info in store.list()) + timedelta(hours=2)


def test_a_dry_run_lists_the_orphans_under_a_prefix_and_removes_nothing(store):
    orphans = delete_orphans(store, "registry", REFERENCED, dry_run=True, now=later(store))

    assert [info.key for info in orphans] == [
        "registry/iris/orphan/model.onnx",
        "registry/iris/orphan/quayside.yaml",
        "registry/wine/orphan/model.onnx",
    ]
    assert sorted(info.key for info in store.list()) == sorted(KEYS)


def test_orphans_are_removed_and_referenced_objects_and_folders_kept(store):
    removed = delete_orphans(store, "registry", REFERENCED, now=later(store))

    assert len(removed) == 3
    assert [info.key for info in store.list()] == [
        "loadtests/iris/1/r1/report.json",
        "registry/iris/kept1/model.onnx",
        "registry/iris/kept1/quayside.yaml",
        "runs/abc/model.bin",
    ]
    assert delete_orphans(store, "registry", REFERENCED, now=later(store)) == []


def test_a_reference_is_a_whole_key_or_folder_not_a_string_prefix(store):
    orphans = find_orphans(
        store, "", ["registry/iris/kept", "runs/abc/model.bin", "loadtests"], now=later(store)
    )

    assert "registry/iris/kept1/model.onnx" in [info.key for info in orphans]


def test_objects_younger_than_the_minimum_age_are_never_orphans(store):
    assert list(find_orphans(store, "", [])) == []  # just written: their rows may not exist yet
    assert len(list(find_orphans(store, "", [], min_age=timedelta(0), now=later(store)))) == len(KEYS)
