"""MLflow's model-registry REST API on ``quayside server``: MLflow's shapes in and out, Quayside's registry underneath.

The app is ``create_app`` over a temporary home (FastAPI's TestClient), called as MLflow's
client calls it: GET with query parameters, POST/PATCH/DELETE with JSON bodies. Versions are
registered through :meth:`RegistryStore.register_version` from a saved Quayside package, except
where the route that creates them from an MLflow source is the subject; every answer is checked
against what the registry itself then holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from quayside import save_model
from quayside.config import Settings
from quayside.errors import AlreadyExistsError, NotFoundError
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.registry.policy import PolicyChange
from quayside.registry.stages import Stage
from quayside.registry.store import RegistryStore
from quayside.server.app import create_app
from quayside.server.deps import AppState, app_state
from quayside.server.mlflow.stages import MLFLOW_STAGES, keep_previous, to_mlflow, to_quayside
from tests.db import fixtures
from tests.registry.reports import HTML, SLO, report_document

# Store-level tests below run on SQLite and on PostgreSQL.
database_url = fixtures.database_url
sqlite_database_url = fixtures.sqlite_database_url

BASE_URL = "http://localhost"  # a Host the server answers to
MLFLOW = "/api/2.0/mlflow"
AJAX = "/ajax-api/2.0/mlflow"
ACTOR = "ci-bot"


def unique(prefix: str = "churn") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("package") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(5))
    return path


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory):
    return create_app(Settings(home=tmp_path_factory.mktemp("mlflow-registry"), actor=ACTOR))


@pytest.fixture(scope="module")
def http(app) -> Iterator[TestClient]:
    with TestClient(app, base_url=BASE_URL) as client:
        yield client


@pytest.fixture
def registry(app) -> RegistryStore:
    return app_state(app).registry


@pytest.fixture
def model(registry: RegistryStore, package: Path) -> str:
    """A registered model with two candidate versions, registered from a Quayside package."""
    name = unique()
    registry.register_version(name, package, actor="setup", source=str(package))
    registry.register_version(name, package, actor="setup", source=str(package))
    return name


def ok(answer: httpx.Response) -> dict[str, Any]:
    assert answer.status_code == 200, answer.text
    return answer.json()


def refused(answer: httpx.Response, status: int, code: str) -> str:
    """The message of an answer in MLflow's error shape, after checking its status and code."""
    assert answer.status_code == status, answer.text
    body = answer.json()
    assert set(body) == {"error_code", "message"}, body
    assert body["error_code"] == code, body
    return body["message"]


def clear_for_production(registry: RegistryStore, name: str, version: int, **policy: Any) -> None:
    """An SLO for the model and a passing load-test report for the version (the gate stays on)."""
    registry.set_policy(name, PolicyChange(slo=SLO, **policy), actor="owner")
    document = report_document(registry.get_version(name, version).digest)
    registry.add_loadtest_report(name, version, document, HTML, actor="owner")


# --- stages ------------------------------------------------------------------------------------


def test_stages_map_both_ways_and_mlflows_names_are_read_in_any_case():
    pairs = {"None": "candidate", "Staging": "staging", "Production": "production", "Archived": "archived"}
    assert {name: stage.value for name, stage in MLFLOW_STAGES.items()} == pairs
    for mlflow_name, quayside_stage in pairs.items():
        assert to_quayside(mlflow_name) == quayside_stage
        assert to_quayside(mlflow_name.upper()) == quayside_stage
        assert to_mlflow(quayside_stage) == mlflow_name
    with pytest.raises(Exception, match="Value must be one of None, Staging, Production, Archived"):
        to_quayside("Prod")


def test_archive_existing_versions_maps_onto_keep_previous():
    production = Stage.PRODUCTION
    assert keep_previous(production, True, allow_multiple_production=True) is False
    assert keep_previous(production, False, allow_multiple_production=True) is True
    # One production version per model: the current one is archived whatever MLflow asked.
    assert keep_previous(production, False, allow_multiple_production=False) is False
    assert keep_previous(Stage.STAGING, False, allow_multiple_production=False) is False
    with pytest.raises(Exception, match="Production only"):
        keep_previous(Stage.STAGING, True, allow_multiple_production=False)


# --- registered models -------------------------------------------------------------------------


def test_a_registered_model_is_created_read_updated_tagged_and_deleted(
    http: TestClient, registry: RegistryStore
):
    name = unique()
    created = ok(
        http.post(
            f"{MLFLOW}/registered-models/create",
            json={"name": name, "description": "churn", "tags": [{"key": "team", "value": "growth"}]},
        )
    )["registered_model"]
    assert created["name"] == name and created["description"] == "churn"
    assert created["tags"] == [{"key": "team", "value": "growth"}]
    assert created["latest_versions"] == [] and created["aliases"] == []
    assert isinstance(created["creation_timestamp"], int) and isinstance(
        created["last_updated_timestamp"], int
    )
    assert registry.get_model(name).tags == {"team": "growth"}

    again = http.post(f"{MLFLOW}/registered-models/create", json={"name": name})
    assert "already registered" in refused(again, 400, "RESOURCE_ALREADY_EXISTS")

    # The MLflow UI's prefix answers the same.
    got = ok(http.get(f"{AJAX}/registered-models/get", params={"name": name}))["registered_model"]
    assert got == created

    updated = ok(http.patch(f"{MLFLOW}/registered-models/update", json={"name": name, "description": "v2"}))
    assert updated["registered_model"]["description"] == "v2"
    assert registry.get_model(name).description == "v2"

    assert (
        ok(http.post(f"{MLFLOW}/registered-models/set-tag", json={"name": name, "key": "tier", "value": "1"}))
        == {}
    )
    assert registry.get_model(name).tags == {"team": "growth", "tier": "1"}
    ok(http.request("DELETE", f"{MLFLOW}/registered-models/delete-tag", json={"name": name, "key": "team"}))
    ok(http.request("DELETE", f"{MLFLOW}/registered-models/delete-tag", json={"name": name, "key": "absent"}))
    assert registry.get_model(name).tags == {"tier": "1"}

    assert ok(http.request("DELETE", f"{MLFLOW}/registered-models/delete", json={"name": name})) == {}
    with pytest.raises(NotFoundError):
        registry.get_model(name)
    assert [e.action for e in registry.history(name)] == ["delete_model"]
    assert registry.history(name)[0].actor == ACTOR
    gone = http.get(f"{MLFLOW}/registered-models/get", params={"name": name})
    assert name in refused(gone, 404, "RESOURCE_DOES_NOT_EXIST")


def test_bad_requests_are_mlflows_invalid_parameter_value(http: TestClient):
    refused(http.get(f"{MLFLOW}/registered-models/get"), 400, "INVALID_PARAMETER_VALUE")
    refused(http.post(f"{MLFLOW}/registered-models/create", json={}), 400, "INVALID_PARAMETER_VALUE")
    bad_name = http.post(f"{MLFLOW}/registered-models/create", json={"name": "../etc"})
    refused(bad_name, 400, "INVALID_PARAMETER_VALUE")


def test_an_endpoint_still_not_served_answers_endpoint_not_found(http: TestClient):
    answer = http.get(f"{MLFLOW}/registered-models/no-such-call")
    assert "model registry" in refused(answer, 404, "ENDPOINT_NOT_FOUND")


def test_rename_takes_versions_aliases_and_tags_along_and_keeps_the_packages(
    http: TestClient, registry: RegistryStore, model: str, package: Path
):
    registry.set_alias(model, "champion", 1, actor="setup")
    registry.set_version_tag(model, 2, "data", "march")
    packages = [registry.package_dir(model, v) for v in (1, 2)]
    new = unique("renamed")

    renamed = ok(http.post(f"{MLFLOW}/registered-models/rename", json={"name": model, "new_name": new}))
    assert renamed["registered_model"]["name"] == new
    assert renamed["registered_model"]["aliases"] == [{"alias": "champion", "version": "1"}]
    assert [v.version for v in registry.list_versions(new)] == [1, 2]
    assert registry.get_version_by_alias(new, "champion").version == 1
    assert registry.get_version(new, 2).tags == {"data": "march"}
    assert [registry.package_dir(new, v) for v in (1, 2)] == packages  # the copies did not move
    refused(
        http.get(f"{MLFLOW}/registered-models/get", params={"name": model}), 404, "RESOURCE_DOES_NOT_EXIST"
    )
    for logged_under in (model, new):
        entry = registry.history(logged_under)[-1]
        assert entry.action == "rename" and entry.actor == ACTOR
        assert entry.evidence == {"from": model, "to": new}

    # Another model under the old name shares its folder: deleting it leaves the renamed one's copies.
    registry.register_version(model, package, actor="setup")
    ok(http.request("DELETE", f"{MLFLOW}/registered-models/delete", json={"name": model}))
    assert all(p.is_dir() for p in packages)
    assert registry.get_version(new, 1).digest

    other = unique()
    registry.create_model(other)
    taken = http.post(f"{MLFLOW}/registered-models/rename", json={"name": other, "new_name": new})
    refused(taken, 400, "RESOURCE_ALREADY_EXISTS")
    assert registry.get_model(other).name == other


def test_get_latest_versions_answers_the_newest_live_version_per_stage(
    http: TestClient, registry: RegistryStore, model: str, package: Path
):
    registry.register_version(model, package, actor="setup")
    registry.transition(model, 1, "staging", actor="setup")

    everything = ok(http.post(f"{MLFLOW}/registered-models/get-latest-versions", json={"name": model}))
    assert [(v["version"], v["current_stage"]) for v in everything["model_versions"]] == [
        ("3", "None"),
        ("1", "Staging"),
    ]
    staging = ok(
        http.post(
            f"{MLFLOW}/registered-models/get-latest-versions", json={"name": model, "stages": ["staging"]}
        )
    )
    assert [v["version"] for v in staging["model_versions"]] == ["1"]
    by_query = ok(
        http.get(
            f"{MLFLOW}/registered-models/get-latest-versions", params={"name": model, "stages": ["None"]}
        )
    )
    assert [v["version"] for v in by_query["model_versions"]] == ["3"]
    got = ok(http.get(f"{MLFLOW}/registered-models/get", params={"name": model}))["registered_model"]
    assert got["latest_versions"] == everything["model_versions"]

    unknown = http.post(
        f"{MLFLOW}/registered-models/get-latest-versions", json={"name": model, "stages": ["Prod"]}
    )
    assert "Prod" in refused(unknown, 400, "INVALID_PARAMETER_VALUE")


# --- model versions ----------------------------------------------------------------------------


def test_a_model_version_is_read_described_tagged_and_deleted_in_mlflows_shape(
    http: TestClient, registry: RegistryStore, model: str, package: Path
):
    version = ok(http.get(f"{MLFLOW}/model-versions/get", params={"name": model, "version": "1"}))[
        "model_version"
    ]
    assert version == {
        "name": model,
        "version": "1",
        "creation_timestamp": registry.get_version(model, 1).created_at,
        "last_updated_timestamp": registry.get_version(model, 1).updated_at,
        "current_stage": "None",
        "description": "",
        "source": str(package),
        "run_id": "",
        "status": "READY",
        "tags": [],
        "aliases": [],
        "run_link": "",
    }
    bad = http.get(f"{MLFLOW}/model-versions/get", params={"name": model, "version": "one"})
    assert "must be an integer" in refused(bad, 400, "INVALID_PARAMETER_VALUE")
    refused(
        http.get(f"{MLFLOW}/model-versions/get", params={"name": model, "version": "9"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )

    updated = ok(
        http.patch(
            f"{MLFLOW}/model-versions/update", json={"name": model, "version": "1", "description": "first"}
        )
    )
    assert updated["model_version"]["description"] == "first"
    assert registry.get_version(model, 1).description == "first"

    tag = {"name": model, "version": "1", "key": "validated", "value": "yes"}
    assert ok(http.post(f"{MLFLOW}/model-versions/set-tag", json=tag)) == {}
    assert registry.get_version(model, 1).tags == {"validated": "yes"}
    assert registry.get_version(model, 2).tags == {}
    got = ok(http.get(f"{MLFLOW}/model-versions/get", params={"name": model, "version": "1"}))[
        "model_version"
    ]
    assert got["tags"] == [{"key": "validated", "value": "yes"}]
    ok(
        http.request(
            "DELETE",
            f"{MLFLOW}/model-versions/delete-tag",
            json={"name": model, "version": "1", "key": "validated"},
        )
    )
    assert registry.get_version(model, 1).tags == {}
    bad_key = http.post(f"{MLFLOW}/model-versions/set-tag", json={**tag, "key": "no\nnewlines"})
    refused(bad_key, 400, "INVALID_PARAMETER_VALUE")

    assert (
        ok(http.request("DELETE", f"{MLFLOW}/model-versions/delete", json={"name": model, "version": "2"}))
        == {}
    )
    assert registry.get_version(model, 2).deleted
    assert registry.history(model, 2)[-1].action == "delete" and registry.history(model, 2)[-1].actor == ACTOR
    gone = http.get(f"{MLFLOW}/model-versions/get", params={"name": model, "version": "2"})
    refused(gone, 404, "RESOURCE_DOES_NOT_EXIST")


def test_version_tags_are_stored_per_version_and_go_with_the_model(
    database_url: str, tmp_path: Path, package: Path
):
    registry = RegistryStore(database_url, tmp_path / "artifacts")
    name = unique()
    first = registry.register_version(name, package, actor="setup", version_tags={"data": "jan"})
    assert first.tags == {"data": "jan"}
    assert registry.set_version_tag(name, 1, "data", "feb").tags == {"data": "feb"}
    assert registry.get_version(name, 1).to_dict()["tags"] == {"data": "feb"}
    assert registry.delete_version_tag(name, 1, "data").tags == {}
    registry.set_version_tag(name, 1, "left", "behind")
    registry.delete_model(name, actor="setup")
    registry.register_version(name, package, actor="setup")
    assert registry.get_version(name, 1).tags == {}  # nothing of the deleted model's


def test_a_rename_is_refused_for_a_taken_name_and_keeps_everything_on_each_database(
    database_url: str, tmp_path: Path, package: Path
):
    registry = RegistryStore(database_url, tmp_path / "artifacts")
    name, taken, new = unique(), unique(), unique("renamed")
    registry.register_version(name, package, actor="a", version_tags={"data": "jan"})
    registry.set_alias(name, "champion", 1, actor="a")
    registry.set_policy(name, PolicyChange(slo=SLO), actor="a")
    registry.create_model(taken)
    with pytest.raises(AlreadyExistsError, match=f"'{taken}' is already registered"):
        registry.rename_model(name, taken, actor="a")
    assert registry.get_model(name).aliases == {"champion": 1}

    renamed = registry.rename_model(name, new, actor="a", reason="clearer")
    assert renamed.name == new and renamed.aliases == {"champion": 1}
    assert registry.get_version(new, 1).tags == {"data": "jan"}
    assert registry.get_policy(new).slo == SLO
    assert registry.history(new)[-1].reason == "clearer"
    with pytest.raises(NotFoundError):
        registry.get_model(name)
    registry.delete_model(new, actor="a")
    with pytest.raises(NotFoundError):
        registry.get_model(new)


def test_transition_stage_moves_versions_as_quaysides_table_allows_and_audits_each_move(
    http: TestClient, registry: RegistryStore, model: str
):
    def move(version: str, stage: str, **extra: Any) -> httpx.Response:
        body = {"name": model, "version": version, "stage": stage, **extra}
        return http.post(f"{MLFLOW}/model-versions/transition-stage", json=body)

    moved = ok(move("1", "Staging"))["model_version"]
    assert moved["current_stage"] == "Staging"
    assert registry.get_version(model, 1).stage == "staging"
    entry = registry.history(model, 1)[-1]
    assert (entry.action, entry.from_value, entry.to_value, entry.actor) == (
        "transition",
        "candidate",
        "staging",
        ACTOR,
    )
    assert ok(move("1", "none"))["model_version"]["current_stage"] == "None"
    assert registry.get_version(model, 1).stage == "candidate"

    straight = refused(move("1", "Production"), 400, "INVALID_PARAMETER_VALUE")
    assert "cannot move from candidate to production" in straight
    assert "Invalid Model Version stage" in refused(move("1", "Prod"), 400, "INVALID_PARAMETER_VALUE")
    archive = refused(move("1", "Staging", archive_existing_versions=True), 400, "INVALID_PARAMETER_VALUE")
    assert "Production only" in archive
    assert registry.get_version(model, 1).stage == "candidate"
    assert ok(move("2", "Archived"))["model_version"]["current_stage"] == "Archived"


# --- the promotion policy holds for MLflow's calls ----------------------------------------------


def test_production_without_a_passing_load_test_is_refused_in_mlflows_shape_and_nothing_changes(
    http: TestClient, registry: RegistryStore, model: str
):
    registry.transition(model, 1, "staging", actor="setup")
    before = registry.history(model)
    body = {"name": model, "version": "1", "stage": "Production"}

    answer = http.post(f"{MLFLOW}/model-versions/transition-stage", json=body)

    # Not 5xx: MLflow's client would retry that for minutes.
    message = refused(answer, 409, "RESOURCE_CONFLICT")
    assert "quayside promote" in message and model in message
    assert registry.get_version(model, 1).stage == "staging"
    assert registry.history(model) == before

    clear_for_production(registry, model, 1)
    moved = ok(http.post(f"{MLFLOW}/model-versions/transition-stage", json=body))["model_version"]
    assert moved["current_stage"] == "Production"
    entry = registry.history(model, 1)[-1]
    assert entry.to_value == "production" and entry.actor == ACTOR
    assert entry.evidence["loadtest_report"]


def test_promoting_archives_the_previous_production_version_unless_the_model_allows_several(
    http: TestClient, registry: RegistryStore, model: str, package: Path
):
    registry.register_version(model, package, actor="setup")
    for version in (1, 2, 3):
        registry.transition(model, version, "staging", actor="setup")
        clear_for_production(registry, model, version)
    promote = f"{MLFLOW}/model-versions/transition-stage"
    ok(http.post(promote, json={"name": model, "version": "1", "stage": "Production"}))
    # MLflow's default (archive_existing_versions false) on a model with one production version.
    ok(http.post(promote, json={"name": model, "version": "2", "stage": "Production"}))
    assert [v.stage for v in registry.list_versions(model)] == ["archived", "production", "staging"]

    registry.update_model(model, allow_multiple_production=True)
    ok(http.post(promote, json={"name": model, "version": "3", "stage": "Production"}))
    assert [v.stage for v in registry.list_versions(model)] == ["archived", "production", "production"]


def test_a_protected_alias_moves_only_to_a_version_with_a_passing_load_test(
    http: TestClient, registry: RegistryStore, model: str
):
    registry.set_policy(model, PolicyChange(protected_aliases=["champion"], slo=SLO), actor="owner")
    alias = f"{MLFLOW}/registered-models/alias"

    answer = http.post(alias, json={"name": model, "alias": "champion", "version": "1"})
    message = refused(answer, 409, "RESOURCE_CONFLICT")
    assert "quayside promote" in message and "champion" in message
    refused(http.get(alias, params={"name": model, "alias": "champion"}), 404, "RESOURCE_DOES_NOT_EXIST")
    assert registry.get_model(model).aliases == {}

    # An alias the policy does not protect moves freely.
    assert ok(http.post(alias, json={"name": model, "alias": "challenger", "version": 2})) == {}
    clear_for_production(registry, model, 1)
    assert ok(http.post(alias, json={"name": model, "alias": "champion", "version": "1"})) == {}

    found = ok(http.get(alias, params={"name": model, "alias": "champion"}))["model_version"]
    assert found["version"] == "1" and found["aliases"] == ["champion"]
    got = ok(http.get(f"{MLFLOW}/registered-models/get", params={"name": model}))["registered_model"]
    assert got["aliases"] == [{"alias": "challenger", "version": "2"}, {"alias": "champion", "version": "1"}]
    assert registry.history(model)[-1].action == "alias_set" and registry.history(model)[-1].actor == ACTOR

    ok(http.request("DELETE", alias, json={"name": model, "alias": "challenger"}))
    assert registry.get_model(model).aliases == {"champion": 1}
    refused(
        http.request("DELETE", alias, json={"name": model, "alias": "challenger"}),
        404,
        "RESOURCE_DOES_NOT_EXIST",
    )


# --- searches ----------------------------------------------------------------------------------


def test_search_registered_models_filters_orders_and_pages(http: TestClient, registry: RegistryStore):
    prefix = unique("search")
    for suffix, team in (("a", "growth"), ("b", "risk"), ("c", "growth")):
        registry.create_model(f"{prefix}-{suffix}", tags={"team": team})
    search = f"{MLFLOW}/registered-models/search"

    def names(**params: Any) -> list[str]:
        return [m["name"] for m in ok(http.get(search, params=params))["registered_models"]]

    assert names(filter=f"name LIKE '{prefix}%'") == [f"{prefix}-a", f"{prefix}-b", f"{prefix}-c"]
    assert names(filter=f"name = '{prefix}-b'") == [f"{prefix}-b"]
    assert names(filter=f"name ILIKE '{prefix.upper()}-_'", order_by=["name DESC"]) == [
        f"{prefix}-c",
        f"{prefix}-b",
        f"{prefix}-a",
    ]
    assert names(filter=f"name LIKE '{prefix}%' AND tags.team = 'growth'") == [f"{prefix}-a", f"{prefix}-c"]
    # What MLflow's client appends to every search: a model without the prompt marker is no prompt.
    registry.update_model(f"{prefix}-b", tags={"mlflow.prompt.is_prompt": "true"})
    assert names(filter=f"name LIKE '{prefix}%' AND tag.`mlflow.prompt.is_prompt` != 'true'") == [
        f"{prefix}-a",
        f"{prefix}-c",
    ]
    registry.delete_model_tag(f"{prefix}-b", "mlflow.prompt.is_prompt")

    first = ok(http.get(search, params={"filter": f"name LIKE '{prefix}%'", "max_results": 2}))
    assert [m["name"] for m in first["registered_models"]] == [f"{prefix}-a", f"{prefix}-b"]
    rest = ok(
        http.get(
            search,
            params={
                "filter": f"name LIKE '{prefix}%'",
                "max_results": 2,
                "page_token": first["next_page_token"],
            },
        )
    )
    assert [m["name"] for m in rest["registered_models"]] == [f"{prefix}-c"]
    assert "next_page_token" not in rest

    bad = refused(http.get(search, params={"filter": "owner = 'me'"}), 400, "INVALID_PARAMETER_VALUE")
    assert "owner" in bad
    refused(http.get(search, params={"max_results": 5000}), 400, "INVALID_PARAMETER_VALUE")
    refused(http.get(search, params={"order_by": ["size"]}), 400, "INVALID_PARAMETER_VALUE")


def test_search_model_versions_by_name_run_id_source_path_tags_and_number(
    http: TestClient, registry: RegistryStore, package: Path
):
    name, other = unique(), unique()
    run_a, run_b = uuid.uuid4().hex, uuid.uuid4().hex
    registry.register_version(name, package, actor="s", source=f"runs:/{run_a}/model", source_run_id=run_a)
    registry.register_version(name, package, actor="s", source=f"runs:/{run_b}/model", source_run_id=run_b)
    registry.register_version(name, package, actor="s", source=f"runs:/{run_a}/other", source_run_id=run_a)
    registry.register_version(other, package, actor="s", source=f"runs:/{run_a}/model", source_run_id=run_a)
    registry.set_version_tag(name, 2, "validated", "yes")
    search = f"{MLFLOW}/model-versions/search"

    def found(filter: str, **params: Any) -> list[tuple[str, str]]:
        versions = ok(http.get(search, params={"filter": filter, **params}))["model_versions"]
        return [(v["name"], v["version"]) for v in versions]

    # MLflow's natural order: by name, the newest version first.
    assert found(f"name = '{name}'") == [(name, "3"), (name, "2"), (name, "1")]
    assert found(f"run_id = '{run_a}'") == sorted(
        [(name, "3"), (name, "1"), (other, "1")], key=lambda v: v[0]
    )
    assert found(f"name = '{name}' AND run_id IN ('{run_b}', 'nope')") == [(name, "2")]
    assert found(f"name = '{name}' AND tags.validated = 'yes'") == [(name, "2")]
    assert found(f"source_path = 'runs:/{run_a}/other'") == [(name, "3")]
    assert found(f"name = '{name}' AND version_number >= 2", order_by=["version_number ASC"]) == [
        (name, "2"),
        (name, "3"),
    ]
    assert found(f"name LIKE '{name}' AND tags.validated != 'yes'") == []  # no tag fails the comparison
    page = ok(http.get(search, params={"filter": f"name = '{name}'", "max_results": 2}))
    assert [v["version"] for v in page["model_versions"]] == ["3", "2"] and page["next_page_token"] == "2"

    registry.delete_version(name, 1, actor="s")
    assert found(f"name = '{name}'") == [(name, "3"), (name, "2")]
    bad = refused(http.get(search, params={"filter": "run_id > 'a'"}), 400, "INVALID_PARAMETER_VALUE")
    assert "run_id > 'a'" in bad
    refused(http.get(search, params={"filter": "name = 'a' OR name = 'b'"}), 400, "INVALID_PARAMETER_VALUE")


# --- versions created from an MLflow source -----------------------------------------------------

SAVE_PICKLE = """
import sys
from pathlib import Path

import mlflow.sklearn, pandas
from mlflow.models import infer_signature
from sklearn.datasets import load_iris
from sklearn.linear_model import LogisticRegression

X, y = load_iris(return_X_y=True, as_frame=True)
model = LogisticRegression(max_iter=500).fit(X, y)
mlflow.sklearn.save_model(model, Path(sys.argv[1]) / "model", serialization_format="cloudpickle",
                          signature=infer_signature(X.head(5), model.predict(X.head(5))))
"""


@pytest.fixture(scope="module")
def mlflow_model_dir(mlflow_venv, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An MLflow model directory (a scikit-learn pickle), written by the real MLflow in its own venv."""
    out = tmp_path_factory.mktemp("mlflow-model")
    (out / "save.py").write_text(SAVE_PICKLE)
    mlflow_venv.run(str(out / "save.py"), str(out), cwd=out)
    return out / "model"


def log_mlflow_model(state: AppState, model_dir: Path) -> str:
    """A run with the MLflow model uploaded at ``model/``, file by file, as MLflow's client does."""
    run = state.tracking.create_run(state.tracking.get_or_create_experiment(unique("exp")).id)
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        state.tracking.upload_artifact(run.id, file, f"model/{file.relative_to(model_dir).as_posix()}")
    return run.id


def test_a_version_is_created_from_a_run_and_mlflow_is_told_where_to_download_it(
    http: TestClient, app, registry: RegistryStore, mlflow_model_dir: Path
):
    run_id = log_mlflow_model(app_state(app), mlflow_model_dir)
    name = unique()
    ok(http.post(f"{MLFLOW}/registered-models/create", json={"name": name}))
    body = {
        "name": name,
        "source": f"mlflow-artifacts:/{run_id}/model",  # what MLflow 3 sends for runs:/<run>/model
        "run_id": run_id,
        "description": "from MLflow",
        "tags": [{"key": "data", "value": "iris"}],
    }

    created = ok(http.post(f"{MLFLOW}/model-versions/create", json=body))["model_version"]

    assert (created["name"], created["version"], created["status"]) == (name, "1", "READY")
    assert created["current_stage"] == "None" and created["run_id"] == run_id
    assert created["source"] == body["source"]
    assert created["tags"] == [{"key": "data", "value": "iris"}]
    stored = registry.get_version(name, 1)
    assert stored.source_run_id == run_id and stored.tags == {"data": "iris"}
    assert stored.description.startswith("from MLflow")
    assert registry.history(name, 1)[0].actor == ACTOR

    uri = ok(http.get(f"{MLFLOW}/model-versions/get-download-uri", params={"name": name, "version": "1"}))
    assert uri == {"artifact_uri": f"mlflow-artifacts:/registered-models/{name}/1"}

    unknown_model = http.post(f"{MLFLOW}/model-versions/create", json={**body, "name": unique()})
    refused(unknown_model, 404, "RESOURCE_DOES_NOT_EXIST")
    elsewhere = http.post(f"{MLFLOW}/model-versions/create", json={**body, "source": "/etc/passwd"})
    assert "runs:/" in refused(elsewhere, 400, "INVALID_PARAMETER_VALUE")
    refused(http.post(f"{MLFLOW}/model-versions/create", json={"name": name}), 400, "INVALID_PARAMETER_VALUE")
    assert [v.version for v in registry.list_versions(name)] == [1]


# --- permissions ---------------------------------------------------------------------------------


class AuthWorld:
    """An auth-on app, a token per user, and a model the owner registered."""

    def __init__(self, home: Path, package: Path) -> None:
        self.app = create_app(Settings(home=home, auth=True, auth_default_permission="none"))
        self.state = app_state(self.app)
        self.tokens: dict[str, str] = {}
        self.package = package
        self.add_user("admin", admin=True)
        for user in ("owner", "reader", "editor", "stranger"):
            self.add_user(user)

    def add_user(self, name: str, *, admin: bool = False) -> None:
        self.state.identity.create_user(name, password="a long enough password", admin=admin)
        self.tokens[name] = self.state.identity.create_token(name, actor="test").token

    def client(self, user: str | None) -> TestClient:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        return TestClient(self.app, base_url=BASE_URL, headers=headers)

    def model(self) -> str:
        """A model 'owner' created through MLflow's API, with one version; reader and editor granted."""
        name = unique()
        ok(self.client("owner").post(f"{MLFLOW}/registered-models/create", json={"name": name}))
        self.state.registry.register_version(name, self.package, actor="owner")
        for user, level in (("reader", Level.READ), ("editor", Level.EDIT)):
            self.state.identity.grant(user, Resource(ResourceKind.MODEL, name), level, actor="test")
        return name


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, package: Path) -> AuthWorld:
    return AuthWorld(tmp_path_factory.mktemp("mlflow-registry-auth"), package)


def test_without_credentials_every_registry_call_is_mlflows_unauthenticated(world: AuthWorld):
    name = world.model()
    anonymous = world.client(None)
    refused(anonymous.get(f"{MLFLOW}/registered-models/get", params={"name": name}), 401, "UNAUTHENTICATED")
    refused(anonymous.get(f"{MLFLOW}/registered-models/search"), 401, "UNAUTHENTICATED")
    move = {"name": name, "version": "1", "stage": "Staging"}
    refused(anonymous.post(f"{MLFLOW}/model-versions/transition-stage", json=move), 401, "UNAUTHENTICATED")
    assert world.state.registry.get_version(name, 1).stage == "candidate"


def test_readers_read_editors_edit_and_only_managers_delete_or_promote(world: AuthWorld):
    name = world.model()
    registry = world.state.registry
    reader, editor, owner = world.client("reader"), world.client("editor"), world.client("owner")
    tag = {"name": name, "key": "team", "value": "growth"}
    to_staging = {"name": name, "version": "1", "stage": "Staging"}
    transition = f"{MLFLOW}/model-versions/transition-stage"

    assert ok(reader.get(f"{MLFLOW}/model-versions/get", params={"name": name, "version": "1"}))
    denied = refused(reader.post(f"{MLFLOW}/registered-models/set-tag", json=tag), 403, "PERMISSION_DENIED")
    assert "'reader' has only read permission" in denied
    refused(reader.post(transition, json=to_staging), 403, "PERMISSION_DENIED")
    assert registry.get_model(name).tags == {} and registry.get_version(name, 1).stage == "candidate"

    ok(editor.post(f"{MLFLOW}/registered-models/set-tag", json=tag))
    assert ok(editor.post(transition, json=to_staging))["model_version"]["current_stage"] == "Staging"
    assert registry.history(name, 1)[-1].actor == "editor"  # the caller, never a name in the request
    production = {"name": name, "version": "1", "stage": "Production"}
    refused(editor.post(transition, json=production), 403, "PERMISSION_DENIED")
    delete_version = {"name": name, "version": "1"}
    refused(
        editor.request("DELETE", f"{MLFLOW}/model-versions/delete", json=delete_version),
        403,
        "PERMISSION_DENIED",
    )
    refused(
        editor.request("DELETE", f"{MLFLOW}/registered-models/delete", json={"name": name}),
        403,
        "PERMISSION_DENIED",
    )
    refused(
        editor.post(f"{MLFLOW}/registered-models/rename", json={"name": name, "new_name": unique()}),
        403,
        "PERMISSION_DENIED",
    )
    assert registry.get_version(name, 1).stage == "staging"

    # The creator manages: past the permission check, the promotion policy still holds.
    assert "quayside promote" in refused(owner.post(transition, json=production), 409, "RESOURCE_CONFLICT")


def test_searches_list_only_the_models_the_caller_may_read(world: AuthWorld):
    granted, hidden = world.model(), world.model()
    world.state.identity.grant("reader", Resource(ResourceKind.MODEL, hidden), Level.NONE, actor="test")
    reader = world.client("reader")
    models = ok(reader.get(f"{MLFLOW}/registered-models/search", params={"max_results": 1000}))
    names = {m["name"] for m in models["registered_models"]}
    assert granted in names and hidden not in names
    versions = ok(reader.get(f"{MLFLOW}/model-versions/search", params={"filter": f"name = '{hidden}'"}))
    assert versions["model_versions"] == []
    strangers = ok(world.client("stranger").get(f"{MLFLOW}/registered-models/search"))["registered_models"]
    assert not {granted, hidden} & {m["name"] for m in strangers}


def test_a_signed_in_user_who_creates_a_model_manages_it_and_a_renamed_models_grants_follow_it(
    world: AuthWorld,
):
    stranger = world.client("stranger")
    name, new = unique(), unique("renamed")
    ok(stranger.post(f"{MLFLOW}/registered-models/create", json={"name": name}))
    world.state.identity.grant("reader", Resource(ResourceKind.MODEL, name), Level.READ, actor="test")
    ok(stranger.post(f"{MLFLOW}/registered-models/rename", json={"name": name, "new_name": new}))
    assert ok(world.client("reader").get(f"{MLFLOW}/registered-models/get", params={"name": new}))
    assert world.state.registry.history(new)[-1].actor == "stranger"
    ok(stranger.request("DELETE", f"{MLFLOW}/registered-models/delete", json={"name": new}))
    with pytest.raises(NotFoundError):
        world.state.registry.get_model(new)


def test_registering_a_runs_model_needs_read_on_the_runs_experiment_too(
    world: AuthWorld, mlflow_model_dir: Path
):
    name = world.model()
    run_id = log_mlflow_model(world.state, mlflow_model_dir)  # an experiment nobody was granted
    body = {"name": name, "source": f"runs:/{run_id}/model", "run_id": run_id}
    editor = world.client("editor")

    denied = refused(editor.post(f"{MLFLOW}/model-versions/create", json=body), 403, "PERMISSION_DENIED")
    assert "experiment" in denied
    assert [v.version for v in world.state.registry.list_versions(name)] == [1]

    experiment = world.state.tracking.run_experiment_id(run_id)
    world.state.identity.grant(
        "editor", Resource(ResourceKind.EXPERIMENT, str(experiment)), Level.READ, actor="test"
    )
    created = ok(editor.post(f"{MLFLOW}/model-versions/create", json=body))["model_version"]
    assert created["version"] == "2" and world.state.registry.history(name, 2)[0].actor == "editor"
