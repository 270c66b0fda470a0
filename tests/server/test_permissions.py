"""Who may do what on ``quayside server``: one route table, fail-closed, over every route the app serves.

The app is ``create_app`` with auth on (FastAPI's TestClient over it), its users and tokens
made in its own :class:`IdentityStore`; everything else goes through the HTTP API. Each
refused call is followed by a re-read of the store: a refusal changes nothing.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from fastapi.staticfiles import StaticFiles
from fastapi.testclient import TestClient

from quayside import save_model
from quayside.config import Settings
from quayside.identity.model import Level, Resource, ResourceKind
from quayside.registry.artifacts import iter_tar
from quayside.registry.policy import PolicyChange
from quayside.server.app import create_app
from quayside.server.deps import AppState, app_state
from quayside.server.permissions import (
    RULES,
    Need,
    Rule,
    experiment_in_path,
    route_path,
    served_routes,
    unruled_routes,
)
from tests.registry.builds import build_document
from tests.registry.reports import HTML, SLO, report_document

BASE_URL = "http://localhost"  # a Host the server answers to
MLFLOW = "/api/2.0/mlflow"
TRACKING = "/api/tracking"
REGISTRY = "/api/registry"


def unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


@dataclass
class World:
    """An auth-on app, its store, a token per user, and what the owner made through the API."""

    app: object
    state: AppState
    tokens: dict[str, str] = field(default_factory=dict)
    package: Path | None = None

    def client(self, user: str | None) -> TestClient:
        headers = {} if user is None else {"Authorization": f"Bearer {self.tokens[user]}"}
        return TestClient(self.app, base_url=BASE_URL, headers=headers)  # type: ignore[arg-type]

    def add_user(self, name: str, *, admin: bool = False) -> None:
        self.state.identity.create_user(name, password="a long enough password", admin=admin)
        self.tokens[name] = self.state.identity.create_token(name, actor="test").token


USERS = ("stranger", "reader", "editor", "member", "manager", "owner")
LEVELS = {
    None: None,
    "stranger": Level.NONE,
    "reader": Level.READ,
    "editor": Level.EDIT,
    "member": Level.EDIT,  # through the group 'team'
    "manager": Level.MANAGE,
    "admin": Level.MANAGE,
}


def _world(home: Path, package: Path, default_permission: str = "none") -> World:
    settings = Settings(home=home, auth=True, auth_default_permission=default_permission)
    app = create_app(settings)
    world = World(app, app_state(app), package=package)
    world.add_user("admin", admin=True)
    for user in USERS:
        world.add_user(user)
    world.state.identity.create_group("team", actor="test")
    world.state.identity.add_member("team", "member", actor="test")
    return world


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, iris_classifier, iris) -> Path:
    path = tmp_path_factory.mktemp("package") / "iris"
    save_model(iris_classifier, path, input_example=iris[0].head(5))
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory, package: Path) -> World:
    return _world(tmp_path_factory.mktemp("permissions"), package)


@dataclass(frozen=True)
class Things:
    """One experiment with a run (a param, an artifact) and one model with a version, made by 'owner'."""

    experiment_id: int
    run_id: str
    model: str
    digest: str = ""
    """The package digest of the model's version 1."""


def make_things(world: World, tmp_path: Path) -> Things:
    owner = world.client("owner")
    experiment = owner.post(f"{TRACKING}/experiments", json={"name": unique("exp")})
    assert experiment.status_code == 201, experiment.text
    experiment_id = experiment.json()["id"]
    run = owner.post(f"{TRACKING}/runs", json={"experiment_id": experiment_id, "name": "r"})
    assert run.status_code == 201, run.text
    run_id = run.json()["id"]
    (tmp_path / "notes.txt").write_text("hello")
    world.state.tracking.upload_artifact(run_id, tmp_path / "notes.txt", "notes.txt")
    model = unique("model")
    archive = b"".join(iter_tar(world.package, 1 << 20))  # type: ignore[arg-type]
    registered = owner.post(
        f"{REGISTRY}/models/{model}/versions",
        content=archive,
        headers={"Content-Type": "application/x-tar"},
    )
    assert registered.status_code == 201, registered.text
    identity = world.state.identity
    for user, level in (("reader", Level.READ), ("editor", Level.EDIT), ("manager", Level.MANAGE)):
        identity.grant(user, Resource(ResourceKind.EXPERIMENT, str(experiment_id)), level, actor="test")
        identity.grant(user, Resource(ResourceKind.MODEL, model), level, actor="test")
    identity.grant(
        "group:team", Resource(ResourceKind.EXPERIMENT, str(experiment_id)), Level.EDIT, actor="test"
    )
    identity.grant("group:team", Resource(ResourceKind.MODEL, model), Level.EDIT, actor="test")
    return Things(experiment_id, run_id, model, registered.json()["digest"])


def clear_for_production(world: World, model: str, version: int = 1) -> None:
    """The owner gives the model an SLO and the version a passing load-test report (the gate is not tested here)."""
    registry = world.state.registry
    registry.set_policy(model, PolicyChange(slo=SLO), actor="owner")
    document = report_document(registry.get_version(model, version).digest)
    registry.add_loadtest_report(model, version, document, HTML, actor="owner")


# --- the route table covers every route ---------------------------------------------------------


def test_every_route_the_app_serves_has_a_rule(tmp_path: Path):
    app = create_app(Settings(home=tmp_path))
    assert unruled_routes(app.routes) == []
    served = {f"{m} {route_path(r)}" for r in served_routes(app.routes) for m in (r.methods or {"GET"})}
    assert set(RULES) <= served | {"GET /static"}, "rules for routes that do not exist"


def test_a_route_without_a_rule_fails_the_coverage_check_and_answers_403(tmp_path: Path):
    app = create_app(Settings(home=tmp_path))  # single-user: the caller is an admin, the table still rules

    @app.get("/api/tracking/unlisted")
    def unlisted() -> dict[str, str]:
        return {"secret": "yes"}

    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "a.txt").write_text("a")
    app.mount("/unlisted-files", StaticFiles(directory=tmp_path / "files"))
    assert unruled_routes(app.routes) == ["GET /api/tracking/unlisted", "GET /unlisted-files"]
    with TestClient(app, base_url=BASE_URL) as http:
        answer = http.get("/api/tracking/unlisted")
        assert answer.status_code == 403
        assert answer.json()["error"]["code"] == "permission_denied"
        assert "no permission rule" in answer.json()["error"]["message"]
        assert http.get("/unlisted-files/a.txt").status_code == 403
        assert http.get("/health").status_code == 200


def test_each_rule_cites_what_actions_allows_at_its_level():
    with pytest.raises(ValueError, match="ACTIONS does not let"):
        Rule.on(ResourceKind.EXPERIMENT, Level.READ, experiment_in_path(), "rename and delete the experiment")
    for key, rule in RULES.items():
        if rule.need is Need.RESOURCE:
            assert rule.allows, key


def _concrete(path: str) -> str:
    path = re.sub(r"\{[^}]+:path\}", "x/y", path)
    return re.sub(r"\{[^}]+\}", "1", path)


def _body(method: str, path: str) -> dict:
    """A body of the kind the route takes (the browser-hardening middleware refuses others first)."""
    if method == "GET" or method == "DELETE":
        return {}
    if "artifacts" in path:
        return {"content": b"x", "headers": {"Content-Type": "application/octet-stream"}}
    if path.endswith("/versions"):
        return {"content": b"x", "headers": {"Content-Type": "application/x-tar"}}
    return {"json": {}}


def test_anonymous_callers_get_401_on_every_route_that_is_not_public(world: World):
    """Sent to every route: proves the check runs on each (a route the dependency missed would not 401)."""
    anonymous = world.client(None)
    checked = 0
    for key, rule in RULES.items():
        method, _, path = key.partition(" ")
        if rule.need is Need.PUBLIC or path == "/static":
            continue
        answer = anonymous.request(method, _concrete(path), follow_redirects=False, **_body(method, path))
        checked += 1
        if not path.startswith("/api/") and answer.is_redirect:
            assert answer.headers["location"].startswith("/login"), key  # a page sends a browser to log in
            continue
        assert answer.status_code == 401, f"{key}: {answer.status_code} {answer.text}"
        assert answer.headers["WWW-Authenticate"].startswith("Bearer")
    assert checked > 80
    for public in ("/health", "/health/ready", "/openapi.json", "/docs", "/login"):
        assert anonymous.get(public).status_code == 200, public


# --- the role matrix ----------------------------------------------------------------------------


@dataclass(frozen=True)
class Case:
    """One representative call: the level it needs, the call, and whether the store shows its effect."""

    name: str
    need: Level
    call: Callable[[TestClient, Things, str], object]
    happened: Callable[[World, Things, str], bool]
    mlflow: bool = False


def _log_param(http: TestClient, t: Things, marker: str):
    return http.post(f"{TRACKING}/runs/{t.run_id}/batch", json={"params": {marker: "1"}})


def _mlflow_log_metric(http: TestClient, t: Things, marker: str):
    body = {"run_id": t.run_id, "key": marker, "value": 1.0, "timestamp": 1, "step": 0}
    return http.post(f"{MLFLOW}/runs/log-metric", json=body)


def _describe_version(http: TestClient, t: Things, marker: str):
    return http.patch(f"{REGISTRY}/models/{t.model}/versions/1", json={"description": marker})


def _to_staging_from_the_ui(http: TestClient, t: Things, marker: str):
    # What the model page's "move" button sends (ui.js → the REST API).
    return http.post(
        f"{REGISTRY}/models/{t.model}/versions/1/transition", json={"stage": "staging", "reason": marker}
    )


def _rename_experiment(http: TestClient, t: Things, marker: str):
    return http.patch(f"{TRACKING}/experiments/{t.experiment_id}", json={"name": marker})


def _to_production(http: TestClient, t: Things, marker: str):
    return http.post(
        f"{REGISTRY}/models/{t.model}/versions/1/transition", json={"stage": "production", "reason": marker}
    )


def _set_policy(http: TestClient, t: Things, marker: str):
    return http.patch(f"{REGISTRY}/models/{t.model}/policy", json={"slo": "p99_ms<=50", "reason": marker})


def _policy_was_set(w: World, t: Things, marker: str) -> bool:
    return any(e.action == "policy_set" and e.reason == marker for e in w.state.registry.history(t.model))


def _upload_report(http: TestClient, t: Things, marker: str):
    document = report_document("0" * 64) | {"target": marker}
    return http.post(
        f"{REGISTRY}/models/{t.model}/versions/1/loadtests", json={"report": document, "html": HTML}
    )


def _report_was_stored(w: World, t: Things, marker: str) -> bool:
    registry = w.state.registry
    return any(
        registry.loadtest_report(t.model, 1, r.id)["target"] == marker
        for r in registry.loadtest_reports(t.model, 1)
    )


def _record_build(http: TestClient, t: Things, marker: str):
    document = build_document(t.digest) | {"tag": f"quayside/{marker}:1"}
    return http.post(f"{REGISTRY}/models/{t.model}/versions/1/builds", json=document)


def _build_was_recorded(w: World, t: Things, marker: str) -> bool:
    return any(b.tag == f"quayside/{marker}:1" for b in w.state.registry.build_records(t.model, 1))


CASES = (
    Case(
        "tracking REST: read a run",
        Level.READ,
        lambda h, t, m: h.get(f"{TRACKING}/runs/{t.run_id}"),
        lambda *_: False,
    ),
    Case(
        "tracking REST: download an artifact",
        Level.READ,
        lambda h, t, m: h.get(f"{TRACKING}/runs/{t.run_id}/artifacts/file", params={"path": "notes.txt"}),
        lambda *_: False,
    ),
    Case(
        "MLflow artifacts: download",
        Level.READ,
        lambda h, t, m: h.get(f"/api/2.0/mlflow-artifacts/artifacts/{t.run_id}/notes.txt"),
        lambda *_: False,
        mlflow=True,
    ),
    Case(
        "MLflow: get a run",
        Level.READ,
        lambda h, t, m: h.get(f"{MLFLOW}/runs/get", params={"run_id": t.run_id}),
        lambda *_: False,
        mlflow=True,
    ),
    Case(
        "registry REST: read a model",
        Level.READ,
        lambda h, t, m: h.get(f"{REGISTRY}/models/{t.model}"),
        lambda *_: False,
    ),
    Case(
        "UI page: a run",
        Level.READ,
        lambda h, t, m: h.get(f"/runs/{t.run_id}", follow_redirects=False),
        lambda *_: False,
    ),
    Case(
        "tracking REST: log a param",
        Level.EDIT,
        _log_param,
        lambda w, t, m: m in w.state.tracking.get_run(t.run_id).params,
    ),
    Case(
        "MLflow: log a metric",
        Level.EDIT,
        _mlflow_log_metric,
        lambda w, t, m: m in w.state.tracking.get_run(t.run_id).metrics,
        mlflow=True,
    ),
    Case(
        "registry REST: describe a version",
        Level.EDIT,
        _describe_version,
        lambda w, t, m: w.state.registry.get_version(t.model, 1).description == m,
    ),
    Case(
        "UI action: move a version to staging",
        Level.EDIT,
        _to_staging_from_the_ui,
        lambda w, t, m: w.state.registry.get_version(t.model, 1).stage == "staging",
    ),
    Case(
        "registry REST: upload a load-test report",
        Level.EDIT,
        _upload_report,
        _report_was_stored,
    ),
    Case(
        "registry REST: record a build",
        Level.EDIT,
        _record_build,
        _build_was_recorded,
    ),
    Case(
        "tracking REST: rename the experiment",
        Level.MANAGE,
        _rename_experiment,
        lambda w, t, m: w.state.tracking.get_experiment(t.experiment_id).name == m,
    ),
    Case(
        "registry REST: move a version to production",
        Level.MANAGE,
        _to_production,
        lambda w, t, m: w.state.registry.get_version(t.model, 1).stage == "production",
    ),
    Case("registry REST: set the promotion policy", Level.MANAGE, _set_policy, _policy_was_set),
)


@pytest.mark.parametrize("user", [None, "stranger", "reader", "editor", "member", "manager", "admin"])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_role_matrix(world: World, tmp_path: Path, case: Case, user: str | None):
    things = make_things(world, tmp_path)
    if case.need == Level.MANAGE and case.name.endswith("production"):
        clear_for_production(world, things.model)
        world.state.registry.transition(things.model, 1, "staging", actor="owner")
    marker = unique("m")
    answer = case.call(world.client(user), things, marker)
    level = LEVELS[user]
    if level is None:
        expected = 401
    elif level >= case.need:
        expected = 200
    else:
        expected = 403
    status = answer.status_code  # type: ignore[attr-defined]
    if expected == 200:
        assert status // 100 == 2, answer.text  # type: ignore[attr-defined]
        assert case.need == Level.READ or case.happened(world, things, marker), (
            "an allowed call left no trace"
        )
        return
    if expected == 401 and case.name.startswith("UI page"):
        assert answer.headers["location"].startswith("/login")  # type: ignore[attr-defined]  # a browser logs in
        return
    assert status == expected, answer.text  # type: ignore[attr-defined]
    assert not case.happened(world, things, marker), "a refused call changed the store"
    if case.name.startswith("UI page"):
        return
    body = answer.json()  # type: ignore[attr-defined]
    if case.mlflow:
        assert body["error_code"] == ("UNAUTHENTICATED" if expected == 401 else "PERMISSION_DENIED")
    else:
        assert body["error"]["code"] == ("unauthenticated" if expected == 401 else "permission_denied")


def test_a_signed_in_user_creates_an_experiment_and_manages_it(world: World):
    stranger = world.client("stranger")
    created = stranger.post(f"{TRACKING}/experiments", json={"name": unique("mine")})
    assert created.status_code == 201
    experiment_id = created.json()["id"]
    assert (
        stranger.patch(
            f"{TRACKING}/experiments/{experiment_id}", json={"name": unique("renamed")}
        ).status_code
        == 200
    )
    assert world.client("reader").get(f"{TRACKING}/experiments/{experiment_id}").status_code == 403


def test_exist_ok_on_an_experiment_the_caller_cannot_read_is_refused(world: World, tmp_path: Path):
    things = make_things(world, tmp_path)
    name = world.state.tracking.get_experiment(things.experiment_id).name
    answer = world.client("stranger").post(f"{TRACKING}/experiments", json={"name": name, "exist_ok": True})
    assert answer.status_code == 403
    answer = world.client("reader").post(f"{TRACKING}/experiments", json={"name": name, "exist_ok": True})
    assert answer.status_code == 201 and answer.json()["id"] == things.experiment_id
    reader = world.state.identity.identity("reader")
    resource = Resource(ResourceKind.EXPERIMENT, str(things.experiment_id))
    assert (
        world.state.identity.level_for(reader, resource, default=Level.NONE) == Level.READ
    )  # no grant from finding


def test_leaving_production_needs_manage_too(world: World, tmp_path: Path):
    things = make_things(world, tmp_path)
    clear_for_production(world, things.model)
    world.state.registry.transition(things.model, 1, "staging", actor="owner")
    world.state.registry.transition(things.model, 1, "production", actor="owner")
    body = {"stage": "archived"}
    answer = world.client("editor").post(f"{REGISTRY}/models/{things.model}/versions/1/transition", json=body)
    assert answer.status_code == 403, answer.text
    assert world.state.registry.get_version(things.model, 1).stage == "production"
    answer = world.client("manager").post(
        f"{REGISTRY}/models/{things.model}/versions/1/transition", json=body
    )
    assert answer.status_code == 200, answer.text


@pytest.mark.parametrize("move", ["transition", "alias"])
def test_only_an_admin_may_override_the_promotion_policy(world: World, tmp_path: Path, move: str):
    things = make_things(world, tmp_path)
    registry = world.state.registry
    registry.set_policy(things.model, PolicyChange(slo=SLO, protected_aliases=["champion"]), actor="owner")
    registry.transition(things.model, 1, "staging", actor="owner")

    def ask(user: str):
        http = world.client(user)
        body = {"reason": "incident 7", "override": True}
        if move == "transition":
            return http.post(
                f"{REGISTRY}/models/{things.model}/versions/1/transition", json=body | {"stage": "production"}
            )
        return http.put(f"{REGISTRY}/models/{things.model}/aliases/champion", json=body | {"version": 1})

    before = (registry.get_version(things.model, 1), registry.history(things.model))
    for user in ("editor", "manager"):
        refused = ask(user)
        assert refused.status_code == 403, refused.text
        assert refused.json()["error"]["code"] == "permission_denied"
        assert (registry.get_version(things.model, 1), registry.history(things.model)) == before
    message = ask("manager").json()["error"]["message"]
    assert "'manager' is not an admin: only an admin may override the promotion policy" in message
    moved = ask("admin")
    assert moved.status_code == 200, moved.text
    entry = registry.history(things.model)[-1]
    assert (entry.override, entry.actor, entry.reason) == (True, "admin", "incident 7")
    assert "policy_refused" in entry.evidence


# --- lists and searches show only what the caller may read ---------------------------------------


@pytest.fixture(scope="module")
def listed(world: World, tmp_path_factory: pytest.TempPathFactory) -> tuple[Things, list[int]]:
    """One experiment the reader may read, with the oldest run; three newer ones it may not."""
    visible = make_things(world, tmp_path_factory.mktemp("listed"))
    hidden = []
    admin = world.client("admin")
    for _ in range(3):
        experiment = admin.post(f"{TRACKING}/experiments", json={"name": unique("hidden")}).json()["id"]
        admin.post(f"{TRACKING}/runs", json={"experiment_id": experiment, "name": "newer"})
        hidden.append(experiment)
    return visible, hidden


def test_lists_with_default_permission_none_show_only_what_was_granted(world: World, listed):
    visible, hidden = listed
    reader, stranger = world.client("reader"), world.client("stranger")
    ids = {e["id"] for e in reader.get(f"{TRACKING}/experiments").json()["experiments"]}
    assert visible.experiment_id in ids and not ids & set(hidden)
    assert not {e["id"] for e in stranger.get(f"{TRACKING}/experiments").json()["experiments"]} & (
        {visible.experiment_id} | set(hidden)
    )
    mlflow = reader.post(f"{MLFLOW}/experiments/search", json={"max_results": 1000}).json()["experiments"]
    assert str(visible.experiment_id) in {e["experiment_id"] for e in mlflow}
    assert not {e["experiment_id"] for e in mlflow} & {str(h) for h in hidden}
    models = {m["name"] for m in reader.get(f"{REGISTRY}/models").json()["models"]}
    assert visible.model in models
    assert visible.model not in {m["name"] for m in stranger.get(f"{REGISTRY}/models").json()["models"]}
    page = reader.get("/models", headers={"accept": "text/html"})
    assert page.status_code == 200 and visible.model in page.text
    assert visible.model not in stranger.get("/models", headers={"accept": "text/html"}).text


def test_run_searches_filter_in_the_query_before_the_page_is_cut(world: World, listed):
    """The newest runs are hidden ones: filtering after paging would answer an empty first page."""
    visible, hidden = listed
    reader = world.client("reader")
    page = reader.post(f"{TRACKING}/runs/search", json={"max_results": 1}).json()["runs"]
    assert [r["id"] for r in page] == [visible.run_id]
    asked = [str(h) for h in hidden] + [str(visible.experiment_id)]
    page = reader.post(f"{MLFLOW}/runs/search", json={"max_results": 1, "experiment_ids": asked}).json()
    assert [r["info"]["run_id"] for r in page["runs"]] == [visible.run_id]
    admin_page = world.client("admin").post(f"{TRACKING}/runs/search", json={"max_results": 1}).json()["runs"]
    assert admin_page[0]["experiment_id"] in hidden


# --- the audit log records who really acted -------------------------------------------------------


def test_the_audit_entry_names_the_token_user_and_a_differing_actor_is_refused(world: World, tmp_path: Path):
    things = make_things(world, tmp_path)
    editor = world.client("editor")
    url = f"{REGISTRY}/models/{things.model}/versions/1/transition"
    before = world.state.registry.history(things.model, 1)
    refused = editor.post(url, json={"stage": "staging", "actor": "someone-else"})
    assert refused.status_code == 403, refused.text
    assert "cannot act as 'someone-else'" in refused.json()["error"]["message"]
    assert world.state.registry.history(things.model, 1) == before
    assert world.state.registry.get_version(things.model, 1).stage == "candidate"
    moved = editor.post(url, json={"stage": "staging", "actor": "editor"})
    assert moved.status_code == 200, moved.text
    alias = editor.put(f"{REGISTRY}/models/{things.model}/aliases/champion", json={"version": 1})
    assert alias.status_code == 200, alias.text
    entries = world.state.registry.history(things.model, 1)
    assert [e.actor for e in entries[len(before) :]] == ["editor", "editor"]
    registered = [e for e in entries if e.actor == "owner"]
    assert registered, "the version's registration names the owner who uploaded it"


def test_without_auth_the_actor_is_the_requests_as_before(tmp_path: Path, package: Path):
    app = create_app(Settings(home=tmp_path, actor="ci-bot"))
    state = app_state(app)
    state.registry.register_version("m", package, actor="ci-bot")
    with TestClient(app, base_url=BASE_URL) as http:
        moved = http.post(
            f"{REGISTRY}/models/m/versions/1/transition", json={"stage": "staging", "actor": "alice"}
        )
        assert moved.status_code == 200, moved.text
        http.put(f"{REGISTRY}/models/m/aliases/a", json={"version": 1})
    assert [e.actor for e in state.registry.history("m", 1)][-2:] == ["alice", "ci-bot"]


def test_mlflow_runs_are_the_callers_whatever_user_the_client_sends(world: World, tmp_path: Path):
    things = make_things(world, tmp_path)
    body = {
        "experiment_id": str(things.experiment_id),
        "user_id": "root",
        "tags": [{"key": "mlflow.user", "value": "root"}],
    }
    created = world.client("editor").post(f"{MLFLOW}/runs/create", json=body)
    assert created.status_code == 200, created.text
    assert created.json()["run"]["info"]["user_id"] == "editor"


def test_logged_model_searches_skip_experiments_the_caller_cannot_read(world: World, listed):
    visible, hidden = listed
    admin = world.client("admin")
    mine = admin.post(
        f"{MLFLOW}/logged-models",
        json={"experiment_id": str(visible.experiment_id), "source_run_id": visible.run_id},
    )
    assert mine.status_code == 200, mine.text
    hidden_run = world.state.tracking.search_runs([hidden[0]])[0].id
    theirs = admin.post(
        f"{MLFLOW}/logged-models", json={"experiment_id": str(hidden[0]), "source_run_id": hidden_run}
    )
    assert theirs.status_code == 200, theirs.text
    asked = {"experiment_ids": [str(hidden[0]), str(visible.experiment_id)], "max_results": 1}
    found = world.client("reader").post(f"{MLFLOW}/logged-models/search", json=asked).json()
    assert [m["info"]["model_id"] for m in found["models"]] == [mine.json()["model"]["info"]["model_id"]]
    model_url = f"{MLFLOW}/logged-models/{theirs.json()['model']['info']['model_id']}"
    assert world.client("reader").get(model_url).json()["error_code"] == "PERMISSION_DENIED"


def test_a_run_page_lists_only_the_versions_of_models_the_caller_may_read(world: World, tmp_path: Path):
    things = make_things(world, tmp_path)
    hidden = unique("hidden-model")
    world.state.registry.register_version(hidden, world.package, source_run_id=things.run_id, actor="admin")
    world.state.registry.register_version(
        things.model, world.package, source_run_id=things.run_id, actor="admin"
    )
    reader_page = world.client("reader").get(f"/runs/{things.run_id}", headers={"accept": "text/html"})
    assert reader_page.status_code == 200, reader_page.text
    assert things.model in reader_page.text and hidden not in reader_page.text
    admin_page = world.client("admin").get(f"/runs/{things.run_id}", headers={"accept": "text/html"})
    assert hidden in admin_page.text
