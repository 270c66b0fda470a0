"""The registry over raw HTTP (clear 4xx, never 500) and the `quayside registry` commands as a user runs them."""

from __future__ import annotations

import json
import subprocess

import httpx
import pytest

from tests.db.fixtures import QUAYSIDE, clean_env
from tests.registry.conftest import unique
from tests.registry.reports import SLO, add_report, clear_for_production


def quayside(target, *args: str, actor: str = "cli-user") -> subprocess.CompletedProcess[str]:
    env = clean_env(**target.env(), COLUMNS="200", QUAYSIDE_ACTOR=actor)
    return subprocess.run([QUAYSIDE, *args], env=env, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "code"),
    [
        ("GET", "/models/nope-model", None, 404, "not_found"),
        ("GET", "/models/{name}/versions/9", None, 404, "not_found"),
        ("GET", "/models/{name}/versions/zero", None, 400, "invalid_request"),
        ("GET", "/models/{name}/versions/0", None, 400, "bad_request"),
        ("POST", "/models/{name}/versions/1/transition", {"stage": "production"}, 409, "invalid_state"),
        ("POST", "/models/{name}/versions/1/transition", {"stage": "gold"}, 400, "bad_request"),
        ("POST", "/models/{name}/versions/1/transition", {"to": "staging"}, 400, "invalid_request"),
        ("PUT", "/models/{name}/aliases/champion", {"version": 5}, 404, "not_found"),
        ("PUT", "/models/{name}/aliases/bad%20alias", {"version": 1}, 400, "invalid_name"),
        ("POST", "/models", {"name": "has space"}, 400, "invalid_name"),
        ("POST", "/models/{name}/versions", b"not a tar", 400, "bad_request"),
        ("DELETE", "/models/{name}/history", None, 405, "method_not_allowed"),
        ("PATCH", "/models/{name}/history", None, 405, "method_not_allowed"),
    ],
)
def test_bad_requests_get_a_clear_4xx_and_change_nothing(
    rest_sqlite, packages, method, path, body, status, code
):
    registry = rest_sqlite.registry()
    name = unique()
    registry.register_model(packages[0], name)
    before = (registry.get_model(name), registry.list_versions(name), registry.history(name))
    url = f"{rest_sqlite.settings.tracking_uri}/api/registry{path.format(name=name)}"
    tar = {"content-type": "application/x-tar"}  # an upload declares its type (server/hardening.py)
    kwargs = {"content": body, "headers": tar} if isinstance(body, bytes) else {"json": body}
    response = httpx.request(method, url, **kwargs, timeout=30)
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["code"] == code and error["message"]
    assert (registry.get_model(name), registry.list_versions(name), registry.history(name)) == before


def test_a_package_upload_cannot_write_outside_its_directory(rest_sqlite, tmp_path):
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        data = b"owned"
        info = tarfile.TarInfo("../../escape.txt")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    url = f"{rest_sqlite.settings.tracking_uri}/api/registry/models/{unique()}/versions"
    response = httpx.post(
        url, content=buffer.getvalue(), headers={"content-type": "application/x-tar"}, timeout=30
    )
    assert (
        response.status_code == 400 and "escapes the package directory" in response.json()["error"]["message"]
    )


def test_the_cli_lifecycle_end_to_end(rest_sqlite, packages):
    name = unique()
    registered = quayside(
        rest_sqlite, "registry", "register", str(packages[0]), "--name", name, "--description", "iris",
        "--tag", "team=growth", "--json",
    )  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert json.loads(registered.stdout)["version"] == 1
    again = quayside(rest_sqlite, "registry", "register", str(packages[1]), "--name", name)
    assert again.returncode == 0 and f"registered {name} version 2" in again.stdout
    (report,) = clear_for_production(rest_sqlite.registry(actor="cli-user"), name, 1)

    for version, stage in ((1, "staging"), (1, "production"), (2, "staging")):
        moved = quayside(
            rest_sqlite, "registry", "transition", name, str(version), "--to", stage, "--reason", "why not",
        )  # fmt: skip
        assert moved.returncode == 0, moved.stderr
        assert f"{name} version {version} is now in {stage}" in moved.stdout
    assert quayside(rest_sqlite, "registry", "alias", "set", name, "champion", "1").returncode == 0

    listed = quayside(rest_sqlite, "registry", "list")
    assert listed.returncode == 0 and name in listed.stdout and "champion→1" in listed.stdout
    shown = quayside(rest_sqlite, "registry", "show", name)
    assert shown.returncode == 0 and "production" in shown.stdout and "team=growth" in shown.stdout
    versions = json.loads(quayside(rest_sqlite, "registry", "versions", name, "--json").stdout)
    assert [(v["version"], v["stage"], v["aliases"]) for v in versions] == [
        (1, "production", ["champion"]),
        (2, "staging", []),
    ]

    history = json.loads(quayside(rest_sqlite, "registry", "history", name, "--json").stdout)
    assert [(e["action"], e["version"], e["from"], e["to"]) for e in history] == [
        ("register", 1, None, "candidate"),
        ("register", 2, None, "candidate"),
        ("policy_set", None, None, None),
        ("transition", 1, "candidate", "staging"),
        ("transition", 1, "staging", "production"),
        ("transition", 2, "candidate", "staging"),
        ("alias_set", 1, None, "1"),
    ]
    assert {e["actor"] for e in history} == {"cli-user"}
    promotion = history[4]
    assert promotion["evidence"]["loadtest_report"] == report.id and promotion["reason"] == "why not"
    assert promotion["evidence"]["slo"] == SLO and promotion["override"] is False
    table = quayside(rest_sqlite, "registry", "history", name)
    assert table.returncode == 0 and f"loadtest_report={report.id}" in table.stdout

    assert quayside(rest_sqlite, "registry", "alias", "delete", name, "champion").returncode == 0
    deleted = quayside(rest_sqlite, "registry", "delete", name, "2", "--actor", "alice")
    assert deleted.returncode == 0 and f"deleted {name} version 2" in deleted.stdout
    assert rest_sqlite.registry().history(name)[-1].actor == "alice"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["transition", "{name}", "1", "--to", "production"], "cannot move from candidate to production"),
        (["transition", "{name}", "1", "--to", "gold"], "unknown stage 'gold'"),
        (["transition", "{name}", "7", "--to", "staging"], "model '{name}' has no version 7"),
        (["alias", "set", "{name}", "champion", "3"], "model '{name}' has no version 3"),
        (["register", "models:/{name}/9", "--name", "{name}"], "cannot resolve 'models:/{name}/9'"),
        (["register", "/no/such/package", "--name", "{name}"], "no model package at '/no/such/package'"),
        (
            ["transition", "{name}", "1", "--to", "staging", "--override"],
            "--override needs --reason TEXT",
        ),
    ],
)
def test_cli_errors_are_one_line_exit_1_and_change_nothing(local_sqlite, packages, args, message):
    registry = local_sqlite.registry()
    name = unique()
    registry.register_model(packages[0], name)
    before = registry.history(name)
    result = quayside(local_sqlite, "registry", *[a.format(name=name) for a in args])
    assert result.returncode == 1, result.stdout
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and message.format(name=name) in lines[0]
    assert "Traceback" not in result.stderr
    assert registry.history(name) == before


def test_the_cli_cannot_move_past_the_promotion_policy_and_a_refusal_changes_nothing(local_sqlite, packages):
    registry = local_sqlite.registry()
    name = unique()
    registry.register_model(packages[0], name)
    registry.transition(name, 1, "staging")
    registry.set_policy(name, slo=SLO, protected_aliases=["champion"])
    before = (registry.get_model(name), registry.list_versions(name), registry.history(name))
    refused = {
        (
            "transition",
            name,
            "1",
            "--to",
            "production",
        ): f"cannot enter production: run quayside promote {name} 1",
        ("alias", "set", name, "champion", "1"): (
            f"cannot take the protected alias 'champion': run quayside promote {name} 1 --alias champion"
        ),
    }
    for args, message in refused.items():
        result = quayside(local_sqlite, "registry", *args)
        assert result.returncode == 1, result.stdout
        assert result.stderr.startswith("error: ") and "Traceback" not in result.stderr
        assert message in " ".join(result.stderr.split())
    assert (registry.get_model(name), registry.list_versions(name), registry.history(name)) == before

    add_report(registry, name, 1)
    for args in refused:
        assert quayside(local_sqlite, "registry", *args).returncode == 0
    assert registry.get_version(name, 1).stage == "production"
    assert registry.get_version_by_alias(name, "champion").version == 1


def test_an_override_from_the_cli_needs_a_reason_and_is_marked(local_sqlite, packages):
    registry = local_sqlite.registry()
    name = unique()
    registry.register_model(packages[0], name)
    registry.transition(name, 1, "staging")
    bare = quayside(local_sqlite, "registry", "transition", name, "1", "--to", "production", "--override")
    assert bare.returncode == 1 and "--override needs --reason" in bare.stderr
    assert registry.get_version(name, 1).stage == "staging"

    moved = quayside(
        local_sqlite, "registry", "transition", name, "1", "--to", "production", "--override",
        "--reason", "incident 42: hotfix",
    )  # fmt: skip
    assert moved.returncode == 0, moved.stderr
    assert "(policy overridden)" in moved.stdout
    entry = registry.history(name)[-1]
    assert (entry.to_value, entry.override, entry.actor, entry.reason) == (
        "production",
        True,
        "cli-user",
        "incident 42: hotfix",
    )
    table = quayside(local_sqlite, "registry", "history", name)
    assert table.returncode == 0 and "(override)" in table.stdout


def test_deleting_a_production_version_from_the_cli_is_refused(local_sqlite, packages):
    registry = local_sqlite.registry()
    name = unique()
    registry.register_model(packages[0], name)
    clear_for_production(registry, name, 1)
    registry.transition(name, 1, "staging")
    registry.transition(name, 1, "production")
    result = quayside(local_sqlite, "registry", "delete", name, "1")
    assert result.returncode == 1
    assert "is in production and cannot be deleted; archive it first" in result.stderr
    assert registry.get_version(name, 1).stage == "production"


def test_quayside_client_reaches_the_registry_of_the_same_store(tmp_path, iris_classifier, iris):
    import quayside
    from quayside.config import Settings

    X, _ = iris
    settings = Settings(home=tmp_path / "home")
    quayside.save_model(iris_classifier, tmp_path / "pkg", input_example=X.head(5), to_onnx=True)
    client = quayside.Client(settings=settings)
    version = client.registry.register_model(tmp_path / "pkg", "iris")
    client.registry.transition("iris", version.version, "staging", reason="offline eval ok")
    assert quayside.RegistryClient(settings=settings).get_version("iris", version.version).stage == "staging"
