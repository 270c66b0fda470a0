"""The registry, specified once through the Python client and run four ways: local or REST, SQLite or PostgreSQL."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from quayside import RegistryClient, load_model
from quayside.errors import (
    AlreadyExistsError,
    InvalidStateError,
    NotFoundError,
    PackageIntegrityError,
    UsageError,
)
from quayside.packager.manifest import read_manifest
from tests.registry.conftest import unique
from tests.registry.reports import clear_for_production


def snapshot(registry: RegistryClient, name: str) -> dict[str, Any]:
    """Everything a user can read about a model, to check that a refused change changed nothing."""
    return {
        "model": registry.get_model(name).to_dict(),
        "versions": [v.to_dict() for v in registry.list_versions(name, include_deleted=True)],
        "history": [e.to_dict() for e in registry.history(name)],
    }


def registered(registry: RegistryClient, packages: list[Path], count: int = 3, **kwargs: Any) -> str:
    name = unique()
    for number in range(count):
        registry.register_model(packages[number % len(packages)], name, **kwargs)
    return name


def test_registering_numbers_versions_from_one_and_records_the_package(registry, packages):
    name = unique()
    first = registry.register_model(
        packages[0], name, model_description="iris classifier", tags={"team": "growth"}
    )
    second = registry.register_model(packages[1], name, description="retrained")
    manifest = read_manifest(packages[1])

    assert (first.version, second.version) == (1, 2)
    assert second.stage == "candidate" and not second.deleted
    assert second.digest == manifest.digest() and second.flavor == "sklearn"
    assert second.signature == manifest.signature.to_dict()
    assert second.onnx_servable is False and second.source_run_id is None
    assert second.description == "retrained" and second.uri == f"models:/{name}/2"
    model = registry.get_model(name)
    assert (model.description, dict(model.tags), model.latest_version) == (
        "iris classifier",
        {"team": "growth"},
        2,
    )
    assert [v.version for v in registry.list_versions(name)] == [1, 2]
    assert name in [m.name for m in registry.list_models()]


def test_a_registered_version_is_a_copy_that_outlives_the_source_package(registry, packages, tmp_path):
    import shutil

    source = tmp_path / "pkg"
    shutil.copytree(packages[2], source)
    name = unique()
    version = registry.register_model(source, name)
    shutil.rmtree(source)
    resolved = registry.resolve(f"models:/{name}/{version.version}")
    assert resolved.path != source and read_manifest(resolved.path).digest() == version.digest
    assert load_model(resolved.path, trust=True).predict(
        {c: [1.0] for c in ("sepal length (cm)", "sepal width (cm)", "petal length (cm)", "petal width (cm)")}
    )["label"].shape == (1,)


def test_models_are_created_updated_and_a_name_is_taken_once(registry):
    name = unique()
    created = registry.create_model(name, "first", {"a": "1"})
    assert created.latest_version == 0 and created.allow_multiple_production is False
    with pytest.raises(AlreadyExistsError, match=f"a model named '{name}' is already registered"):
        registry.create_model(name)
    updated = registry.update_model(
        name, description="second", tags={"b": "2"}, allow_multiple_production=True
    )
    assert (updated.description, dict(updated.tags), updated.allow_multiple_production) == (
        "second",
        {"a": "1", "b": "2"},
        True,
    )


def test_the_whole_lifecycle_with_promotion_archiving_the_previous_production(registry, packages):
    name = registered(registry, packages)
    first, second = clear_for_production(registry, name, 1, 2)
    registry.transition(name, 1, "staging", reason="looks good")
    registry.transition(name, 1, "production", reason="ship it")
    registry.transition(name, 2, "staging")
    promoted = registry.transition(name, 2, "production", reason="better recall")

    assert promoted.stage == "production"
    stages = {v.version: v.stage for v in registry.list_versions(name)}
    assert stages == {1: "archived", 2: "production", 3: "candidate"}
    assert registry.get_latest_version(name, "production").version == 2
    archived = next(e for e in registry.history(name, 1) if e.to_value == "archived")
    assert (
        archived.from_value == "production"
        and archived.reason == "replaced in production by version 2: better recall"
    )
    promotions = [e for e in registry.history(name) if e.to_value == "production"]
    assert [(e.version, e.evidence["loadtest_report"]) for e in promotions] == [(1, first.id), (2, second.id)]


def test_keep_previous_needs_a_model_that_allows_several_production_versions(registry, packages):
    single = registered(registry, packages, 2)
    clear_for_production(registry, single, 1, 2)
    for version in (1, 2):
        registry.transition(single, version, "staging")
    registry.transition(single, 1, "production")
    before = snapshot(registry, single)
    with pytest.raises(
        InvalidStateError, match="allows one production version and version 1 is in production"
    ):
        registry.transition(single, 2, "production", keep_previous=True)
    assert snapshot(registry, single) == before

    multiple = registered(registry, packages, 3, allow_multiple_production=True)
    clear_for_production(registry, multiple, 1, 2, 3)
    for version in (1, 2, 3):
        registry.transition(multiple, version, "staging")
        registry.transition(multiple, version, "production", keep_previous=version != 3)
    stages = {v.version: v.stage for v in registry.list_versions(multiple)}
    assert stages == {1: "archived", 2: "archived", 3: "production"}  # the last promotion archived both


def test_keep_previous_keeps_both_in_production_when_allowed(registry, packages):
    name = registered(registry, packages, 2, allow_multiple_production=True)
    clear_for_production(registry, name, 1, 2)
    for version in (1, 2):
        registry.transition(name, version, "staging")
        registry.transition(name, version, "production", keep_previous=True)
    assert {v.version: v.stage for v in registry.list_versions(name)} == {1: "production", 2: "production"}
    assert registry.resolve(f"models:/{name}/production").version.version == 2


@pytest.mark.parametrize(
    ("moves", "refused", "error", "message"),
    [
        ([], ("production",), InvalidStateError, "cannot move from candidate to production"),
        (["archived"], ("production",), InvalidStateError, "cannot move from archived to production"),
        (
            ["staging", "production"],
            ("candidate",),
            InvalidStateError,
            "cannot move from production to candidate",
        ),
        (["staging"], ("staging",), InvalidStateError, "is already in staging"),
        ([], ("live",), UsageError, "unknown stage 'live'"),
    ],
)
def test_an_invalid_transition_is_a_clear_error_that_changes_nothing(
    registry, packages, moves, refused, error, message
):
    name = registered(registry, packages, 1)
    clear_for_production(registry, name, 1)
    for stage in moves:
        registry.transition(name, 1, stage)
    before = snapshot(registry, name)
    with pytest.raises(error, match=message):
        registry.transition(name, 1, refused[0], reason="should not happen")
    assert snapshot(registry, name) == before


def test_unknown_models_and_versions_are_not_found_and_change_nothing(registry, packages):
    name = registered(registry, packages, 1)
    before = snapshot(registry, name)
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 7"):
        registry.transition(name, 7, "staging")
    with pytest.raises(NotFoundError, match="no registered model named 'nope-"):
        registry.transition(unique("nope"), 1, "staging")
    with pytest.raises(NotFoundError, match=f"model '{name}' has no version 9"):
        registry.set_alias(name, "champion", 9)
    with pytest.raises(UsageError, match="model name 'bad/name' is invalid"):
        registry.get_model("bad/name")
    assert snapshot(registry, name) == before


def test_deleting_a_production_or_aliased_version_is_refused_and_changes_nothing(registry, packages):
    name = registered(registry, packages, 3)
    clear_for_production(registry, name, 1)
    registry.transition(name, 1, "staging")
    registry.transition(name, 1, "production")
    registry.set_alias(name, "challenger", 2)
    before = snapshot(registry, name)
    with pytest.raises(InvalidStateError, match="is in production and cannot be deleted; archive it first"):
        registry.delete_version(name, 1)
    with pytest.raises(InvalidStateError, match="is aliased as challenger; move or delete the alias first"):
        registry.delete_version(name, 2)
    assert snapshot(registry, name) == before

    deleted = registry.delete_version(name, 3, reason="bad data")
    assert deleted.deleted and [v.version for v in registry.list_versions(name)] == [1, 2]
    assert registry.register_model(packages[0], name).version == 4  # numbers are never reused
    with pytest.raises(NotFoundError, match=f"version 3 of '{name}' was deleted"):
        registry.resolve(f"models:/{name}/3")
    with pytest.raises(InvalidStateError, match=f"version 3 of '{name}' is deleted"):
        registry.transition(name, 3, "staging")


def test_aliases_point_at_one_version_move_and_are_deleted(registry, packages):
    name = registered(registry, packages, 2)
    registry.set_alias(name, "champion", 1, reason="first")
    moved = registry.set_alias(name, "champion", 2, reason="better")
    registry.set_alias(name, "champion", 2)  # already there: no change, no entry

    assert moved.aliases == ("champion",)
    assert dict(registry.get_model(name).aliases) == {"champion": 2}
    assert registry.get_version_by_alias(name, "champion").version == 2
    assert registry.get_version(name, 1).aliases == ()
    registry.delete_alias(name, "champion", reason="retired")
    with pytest.raises(NotFoundError, match=f"model '{name}' has no alias 'champion'"):
        registry.get_version_by_alias(name, "champion")
    with pytest.raises(UsageError, match="alias 'bad alias' is invalid"):
        registry.set_alias(name, "bad alias", 1)

    alias_entries = [
        (e.action, e.alias, e.from_value, e.to_value, e.reason) for e in registry.history(name) if e.alias
    ]
    assert alias_entries == [
        ("alias_set", "champion", None, "1", "first"),
        ("alias_set", "champion", "1", "2", "better"),
        ("alias_delete", "champion", "2", None, "retired"),
    ]


def test_the_audit_log_records_who_what_when_why_and_on_what_evidence(target, packages):
    registry = target.registry(actor="ci-bot")
    name = registered(registry, packages, 1)
    (report,) = clear_for_production(registry, name, 1)
    registry.transition(name, 1, "staging", reason="passed offline eval", actor="alice")
    registry.transition(name, 1, "production", reason="load test ok")

    entries = registry.history(name)
    assert [(e.action, e.version, e.from_value, e.to_value, e.actor) for e in entries] == [
        ("register", 1, None, "candidate", "ci-bot"),
        ("policy_set", None, None, None, "ci-bot"),
        ("transition", 1, "candidate", "staging", "alice"),
        ("transition", 1, "staging", "production", "ci-bot"),
    ]
    assert entries[2].reason == "passed offline eval"
    assert entries[3].evidence["loadtest_report"] == report.id and entries[3].override is False
    assert all(e.model == name for e in entries)
    assert [e.timestamp for e in entries] == sorted(e.timestamp for e in entries)
    assert [e.id for e in entries] == sorted(e.id for e in entries)


def test_the_audit_log_cannot_be_edited_or_deleted_through_the_api(registry):
    for backend in (registry, registry.backend):
        names = {n for n in dir(backend) if not n.startswith("_")}
        assert not {n for n in names if ("audit" in n or "history" in n or "entry" in n) and n != "history"}


def test_the_audit_log_outlives_a_deleted_model(registry, packages):
    name = registered(registry, packages, 1)
    registry.delete_model(name, reason="obsolete")
    with pytest.raises(NotFoundError, match=f"no registered model named '{name}'"):
        registry.get_model(name)
    assert [e.action for e in registry.history(name)] == ["register", "delete_model"]


def test_each_uri_form_resolves_to_the_right_package(registry, packages):
    name = registered(registry, packages, 3)
    registry.transition(name, 2, "staging")
    registry.set_alias(name, "champion", 1)
    digests = {v.version: v.digest for v in registry.list_versions(name)}

    def resolved_digest(uri: str) -> str:
        return read_manifest(registry.resolve(uri).path).digest()

    assert resolved_digest(f"models:/{name}/3") == digests[3]
    assert resolved_digest(f"models:/{name}@champion") == digests[1]
    assert resolved_digest(f"models:/{name}/staging") == digests[2]
    assert resolved_digest(f"models:/{name}/latest") == digests[3]
    assert resolved_digest(str(packages[0])) == read_manifest(packages[0]).digest()
    assert registry.resolve(f"models:/{name}@champion").version.version == 1


@pytest.mark.parametrize(
    ("uri", "error", "message"),
    [
        (
            "models:/{name}/9",
            NotFoundError,
            "cannot resolve 'models:/{name}/9': model '{name}' has no version 9",
        ),
        ("models:/{name}@nobody", NotFoundError, "model '{name}' has no alias 'nobody'"),
        ("models:/{name}/production", NotFoundError, "model '{name}' has no version in production"),
        ("models:/missing-model/1", NotFoundError, "no registered model named 'missing-model'"),
        ("models:/{name}/prod", UsageError, "'prod' is neither a version number, 'latest', nor a stage"),
        ("models:/{name}", UsageError, "say which version"),
        ("models:/", UsageError, "the model name is missing"),
        ("runs:/", UsageError, "the run id is missing"),
        (
            "runs:/0123456789abcdef0123456789abcdef",
            UsageError,
            "the artifact path after the run id is missing",
        ),
        ("s3://bucket/model", UsageError, "the scheme 's3' is not one Quayside resolves"),
        ("no/such/dir", NotFoundError, "no model package at 'no/such/dir'"),
    ],
)
def test_an_unresolvable_uri_says_which_part_failed(registry, packages, uri, error, message):
    name = registered(registry, packages, 1)
    with pytest.raises(error, match=message.format(name=name).replace("(", r"\(").replace(")", r"\)")):
        registry.resolve(uri.format(name=name))


def test_a_run_uri_registers_with_its_lineage_and_resolves(target, packages, iris_classifier, iris):
    tracking = target.tracking()
    run = tracking.create_run(unique("exp"))
    tracking.log_model(run.id, iris_classifier, "model", input_example=iris[0].head(10))
    registry = target.registry()

    version = registry.register_model(f"runs:/{run.id}/model", unique())
    assert version.source_run_id == run.id and version.source == f"runs:/{run.id}/model"
    assert read_manifest(registry.resolve(f"runs:/{run.id}/model").path).source_run == run.id
    with pytest.raises(NotFoundError, match=f"cannot resolve 'runs:/{run.id}/nothing'"):
        registry.resolve(f"runs:/{run.id}/nothing")
    with pytest.raises(NotFoundError, match="no run with id '0123456789abcdef0123456789abcdef'"):
        registry.resolve("runs:/0123456789abcdef0123456789abcdef/model")


def test_a_tampered_registered_package_is_refused_at_load(local_sqlite, packages, monkeypatch):
    for key, value in local_sqlite.env().items():
        monkeypatch.setenv(key, value)  # quayside.load_model reads the settings like a user's script
    registry = local_sqlite.registry()
    name = registered(registry, packages, 1)
    assert (
        load_model(f"models:/{name}/1", trust=True).manifest.digest() == read_manifest(packages[0]).digest()
    )
    path = registry.resolve(f"models:/{name}/1").path
    model_file = path / read_manifest(path).files[0].path
    model_file.write_bytes(model_file.read_bytes() + b"tampered")
    with pytest.raises(PackageIntegrityError, match=r"does not match its sha256 .*: the package was altered"):
        load_model(f"models:/{name}/1", trust=True)

    manifest = path / "quayside.yaml"
    manifest.write_text(manifest.read_text().replace("number: 0", "number: 99"))
    with pytest.raises(
        PackageIntegrityError, match=f"the registered package of version 1 of '{name}' was altered"
    ):
        registry.resolve(f"models:/{name}/1")
