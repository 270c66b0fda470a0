"""One rule for names, on every path into the store: Python, REST, the MLflow adapter, the CLI, Kubernetes.

Each hostile name in :data:`NAMES` goes through every path that takes a name. Per
kind of name the table says whether the rule accepts it: a free name (experiment,
run, logged model) is any one line of printable text up to 256 characters; a
registered model name is a portable file name; a Kubernetes name is a DNS label.
A refused name is a 400 (the MLflow adapter's ``INVALID_PARAMETER_VALUE``, the CLI's
exit 1 with one line) whose message says what is wrong, and nothing is written;
an accepted name comes back exactly as given, and never becomes a path of its own.
"""

from __future__ import annotations

import os
import re
import uuid
from pathlib import Path
from typing import NamedTuple

import httpx
import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import quayside
from quayside.artifacts.keys import RECORD_SUFFIX
from quayside.cli.app import main as cli_main
from quayside.config import Settings
from quayside.errors import InvalidNameError, UsageError
from quayside.packager.k8s.render import DeploymentSpec
from quayside.registry.client import RegistryClient
from quayside.tracking.client import Client
from tests.db.fixtures import Server

TRACKING, REGISTRY, MLFLOW = "/api/tracking", "/api/registry", "/api/2.0/mlflow"
MLFLOW_ARTIFACTS = "/api/2.0/mlflow-artifacts/artifacts"


class Name(NamedTuple):
    value: str
    free: bool  # accepted as an experiment, run or logged-model name
    model: bool  # accepted as a registered model name
    dns: bool  # accepted as a Kubernetes deployment name
    problem: str  # what the message of a refusal says (for the kinds that refuse it)


NAMES = {
    "100kb": Name("n" * 100_000, False, False, False, "characters long"),
    "257-chars": Name("n" * 257, False, False, False, "the limit is"),
    "256-chars": Name("n" * 256, True, False, False, "the limit is"),
    "trailing-newline": Name("iris\n", False, False, False, "U+000A"),
    "embedded-newline": Name("ir\nis", False, False, False, "U+000A"),
    "carriage-return": Name("ir\ris", False, False, False, "U+000D"),
    "tab": Name("ir\tis", False, False, False, "U+0009"),
    "nul": Name("ir\x00is", False, False, False, "U+0000"),
    "del": Name("iris\x7f", False, False, False, "U+007F"),
    "ansi-escape": Name("\x1b[31mred", False, False, False, "U+001B"),
    "rtl-override": Name("abc\u202edef", False, False, False, "U+202E"),
    "zero-width-space": Name("prod\u200b", False, False, False, "U+200B"),
    "empty": Name("", False, False, False, "empty"),
    "only-spaces": Name("   ", False, False, False, "whitespace"),
    "traversal": Name("../../etc/passwd", True, False, False, "invalid"),
    "slash": Name("a/b", True, False, False, "invalid"),
    "absolute": Name("/abs", True, False, False, "invalid"),
    "dot": Name(".", True, False, False, "invalid"),
    "dotdot": Name("..", True, False, False, "invalid"),
    "windows-device": Name("CON", True, True, False, "invalid"),
    "triple-quotes": Name('x"""; import os; """', True, False, False, "invalid"),
    "html": Name("x</title><script>alert(1)</script>", True, False, False, "invalid"),
    "rich-markup": Name("[bold]x[/bold]", True, False, False, "invalid"),
    "accented": Name("modèle", True, False, False, "invalid"),
    "cjk": Name("模型", True, False, False, "invalid"),
    "plain": Name("iris-v2", True, True, True, ""),
    "dotted": Name("iris.v2", True, True, False, "invalid"),
}
ALL = pytest.mark.parametrize("case", list(NAMES.values()), ids=list(NAMES))


def unique() -> str:
    return f"renamed-{uuid.uuid4().hex[:12]}"


def refused(response: httpx.Response, problem: str) -> None:
    """A Quayside 400 whose message names the problem."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_name" and problem in error["message"], error


def mlflow_refused(response: httpx.Response, problem: str) -> None:
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["error_code"] == "INVALID_PARAMETER_VALUE" and problem in body["message"], body


def files_under(root: Path) -> set[str]:
    """Every file under ``root`` (relative), leaving out the scratch folder's bookkeeping and the
    local store's digest record beside each object."""
    return {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file()
        and ".quayside-tmp" not in p.parts
        and p.suffix not in (".db", ".db-wal", ".db-shm")
        and not p.name.endswith(RECORD_SUFFIX)
    }


# --- a real server (``server`` and ``http``: tests/adversarial/conftest.py) -----------------------


@pytest.fixture(scope="module")
def experiment_id(http: httpx.Client) -> int:
    return http.post(f"{TRACKING}/experiments", json={"name": f"names-{uuid.uuid4().hex[:8]}"}).json()["id"]


def experiment_names(http: httpx.Client) -> list[str]:
    return [e["name"] for e in http.get(f"{TRACKING}/experiments").json()["experiments"]]


def run_names(http: httpx.Client, experiment_id: int) -> list[str]:
    body = {"experiment_ids": [experiment_id], "max_results": 1000}
    return sorted(r["name"] for r in http.post(f"{TRACKING}/runs/search", json=body).json()["runs"])


@ALL
def test_rest_experiment_names_meet_the_rule(case: Name, http: httpx.Client):
    before = experiment_names(http)
    response = http.post(f"{TRACKING}/experiments", json={"name": case.value})
    if not case.free:
        refused(response, case.problem)
        assert experiment_names(http) == before
        if len(case.value) < 10_000:  # httpx refuses longer URLs itself
            refused(http.get(f"{TRACKING}/experiments/lookup", params={"name": case.value}), case.problem)
        return
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["name"] == case.value
    found = http.get(f"{TRACKING}/experiments/lookup", params={"name": case.value}).json()
    assert found["id"] == created["id"] and found["name"] == case.value
    # Renamed away, so that the same name is free for the other paths' tests.
    assert http.patch(f"{TRACKING}/experiments/{created['id']}", json={"name": unique()}).status_code == 200


@ALL
def test_rest_run_names_and_renames_meet_the_rule(case: Name, http: httpx.Client, experiment_id: int):
    before = run_names(http, experiment_id)
    response = http.post(f"{TRACKING}/runs", json={"experiment_id": experiment_id, "name": case.value})
    if case.value == "":
        assert response.status_code == 201  # no name given: the run gets a generated one
        assert response.json()["name"].startswith("run-")
        return
    if not case.free:
        refused(response, case.problem)
        assert run_names(http, experiment_id) == before
        run = http.post(f"{TRACKING}/runs", json={"experiment_id": experiment_id, "name": "to-rename"}).json()
        refused(http.patch(f"{TRACKING}/runs/{run['id']}", json={"name": case.value}), case.problem)
        assert http.get(f"{TRACKING}/runs/{run['id']}").json()["name"] == "to-rename"
        return
    assert response.status_code == 201, response.text
    assert http.get(f"{TRACKING}/runs/{response.json()['id']}").json()["name"] == case.value


@ALL
def test_rest_registered_model_names_meet_the_rule(case: Name, http: httpx.Client):
    before = http.get(f"{REGISTRY}/models").json()["models"]
    response = http.post(f"{REGISTRY}/models", json={"name": case.value})
    if not case.model:
        refused(response, case.problem)
        assert http.get(f"{REGISTRY}/models").json()["models"] == before
        return
    assert response.status_code == 201, response.text
    assert http.get(f"{REGISTRY}/models/{case.value}").json()["name"] == case.value
    assert http.delete(f"{REGISTRY}/models/{case.value}").status_code == 204


# --- the MLflow adapter ---------------------------------------------------------------------------


@ALL
def test_mlflow_experiment_and_run_names_meet_the_rule(case: Name, http: httpx.Client, experiment_id: int):
    before = experiment_names(http)
    response = http.post(f"{MLFLOW}/experiments/create", json={"name": case.value})
    if case.free:
        assert response.status_code == 200, response.text
        created = response.json()["experiment_id"]
        got = http.get(f"{MLFLOW}/experiments/get-by-name", params={"experiment_name": case.value}).json()
        assert got["experiment"]["name"] == case.value
        http.post(f"{MLFLOW}/experiments/update", json={"experiment_id": created, "new_name": unique()})
    elif case.value:  # an empty name is refused by MLflow's own rule (missing value) first
        mlflow_refused(response, case.problem)
        assert experiment_names(http) == before
    else:
        assert response.status_code == 400 and experiment_names(http) == before

    runs_before = run_names(http, experiment_id)
    body = {"experiment_id": str(experiment_id), "run_name": case.value}
    response = http.post(f"{MLFLOW}/runs/create", json=body)
    if case.free or not case.value:  # no run_name: a generated one, as on an MLflow server
        assert response.status_code == 200, response.text
        run = response.json()["run"]["info"]
        assert case.value == "" or run["run_name"] == case.value
    else:
        mlflow_refused(response, case.problem)
        assert run_names(http, experiment_id) == runs_before


@ALL
def test_mlflow_logged_model_names_meet_the_rule_and_never_become_a_path(
    case: Name, http: httpx.Client, server: Server, experiment_id: int
):
    run = http.post(f"{MLFLOW}/runs/create", json={"experiment_id": str(experiment_id)}).json()["run"]["info"]
    run_dir = server.home / "artifacts" / "runs" / run["run_id"]
    body = {"experiment_id": str(experiment_id), "source_run_id": run["run_id"], "name": case.value}
    response = http.post(f"{MLFLOW}/logged-models", json=body)
    if not case.free and case.value:
        mlflow_refused(response, case.problem)
        assert http.get(f"{MLFLOW}/runs/get", params={"run_id": run["run_id"]}).json()["run"]["outputs"] == {
            "model_outputs": []
        }
        assert not run_dir.exists() or files_under(run_dir) == set()
        return
    assert response.status_code == 200, response.text
    info = response.json()["model"]["info"]
    assert info["name"] == (case.value or "model")
    folder = info["artifact_uri"].removeprefix(f"mlflow-artifacts:/{run['run_id']}/")
    assert "/" not in folder and folder not in (".", "..") and len(folder.encode()) <= 130
    upload = http.put(f"{MLFLOW_ARTIFACTS}/{run['run_id']}/{folder}/MLmodel", content=b"flavors: {}\n")
    assert upload.status_code == 200, upload.text
    assert files_under(run_dir) == {f"{folder}/MLmodel"}
    again = http.get(f"{MLFLOW}/logged-models/{info['model_id']}").json()["model"]["info"]
    assert again["name"] == info["name"]


# --- the Python API ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory) -> Path:
    features = np.random.default_rng(0).random((20, 3)).astype("float32")
    model = LogisticRegression().fit(features, features[:, 0] > 0.5)
    path = tmp_path_factory.mktemp("names-package") / "iris"
    quayside.save_model(model, path, input_example=features[:2])
    return path


@pytest.fixture
def settings(tmp_path: Path) -> Settings:
    return Settings(home=tmp_path / "home")


@ALL
def test_python_client_experiment_and_run_names_meet_the_rule(case: Name, settings: Settings):
    client = Client(settings=settings)
    experiment = client.create_experiment("python")
    if not case.free:
        with pytest.raises(InvalidNameError, match=re.escape(case.problem)):
            client.create_experiment(case.value)
        if case.value:
            with pytest.raises(InvalidNameError, match=re.escape(case.problem)):
                client.create_run(experiment.id, case.value)
        assert [e.name for e in client.list_experiments()] == ["python"]
        assert client.search_runs([experiment.id]) == [] or case.value == ""
        return
    assert client.get_experiment(client.create_experiment(case.value).id).name == case.value
    assert client.get_experiment(case.value).name == case.value
    run = client.create_run(experiment.id, case.value)
    assert client.get_run(run.id).name == case.value


@ALL
def test_python_log_model_names_meet_the_rule(case: Name, settings: Settings):
    client = Client(settings=settings)
    run = client.create_run(client.create_experiment("models").id)
    features = np.random.default_rng(1).random((10, 2)).astype("float32")
    model = LogisticRegression().fit(features, features[:, 0] > 0.5)
    # A Quayside logged model's name is its artifact path; its last part names the package.
    package_name = case.value.rstrip("/").rpartition("/")[2]
    path_ok = (
        case.free
        and case.value not in (".", "..", "../../etc/passwd", "/abs")
        and len(case.value.encode()) <= 255  # the longest file name most file systems hold
    )
    if not path_ok:
        with pytest.raises(UsageError):
            client.log_model(run.id, model, case.value, input_example=features[:2])
        assert client.get_run(run.id).models == ()
        assert client.list_artifacts(run.id, recursive=True) == []
        return
    logged = client.log_model(run.id, model, case.value, input_example=features[:2])
    assert logged.path == case.value and logged.name == package_name
    assert [m.path for m in client.get_run(run.id).models] == [case.value]


@ALL
def test_python_registry_names_meet_the_rule(case: Name, settings: Settings, package: Path):
    registry = RegistryClient(settings=settings)
    if not case.model:
        with pytest.raises(InvalidNameError, match=re.escape(case.problem)):
            registry.register_model(package, case.value)
        with pytest.raises(InvalidNameError, match=re.escape(case.problem)):
            registry.create_model(case.value)
        assert registry.list_models() == []
        assert (
            not (settings.artifact_dir / "registry").exists()
            or files_under(settings.artifact_dir / "registry") == set()
        )
        return
    version = registry.register_model(package, case.value)
    assert version.name == case.value and registry.get_model(case.value).name == case.value
    assert registry.resolve(f"models:/{case.value}/1").path.is_relative_to(settings.artifact_dir / "registry")


@pytest.mark.parametrize("alias", ["champion\n", "a b", "", "x" * 65, "\u202e", "../x"])
def test_python_aliases_meet_the_rule(alias: str, settings: Settings, package: Path):
    registry = RegistryClient(settings=settings)
    registry.register_model(package, "aliased")
    with pytest.raises(InvalidNameError, match="alias"):
        registry.set_alias("aliased", alias, 1)
    assert registry.get_version("aliased", 1).aliases == ()


@ALL
def test_fluent_run_names_meet_the_rule(case: Name, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    for key in [k for k in os.environ if k.startswith("QUAYSIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_HOME", str(tmp_path / "home"))
    client = Client(settings=Settings(home=tmp_path / "home"))
    if not case.free and case.value:
        with pytest.raises(InvalidNameError, match=re.escape(case.problem)):
            quayside.start_run("fluent", run_name=case.value)
        experiment = client.get_experiment("fluent")
        assert client.search_runs([experiment.id]) == []
        return
    with quayside.start_run("fluent", run_name=case.value or None) as run:
        run_id = run.run_id
    # An empty run_name means "no name": the run gets the store's default one.
    assert client.get_run(run_id).name == (case.value or f"run-{run_id[:8]}")


# --- the CLI and Kubernetes ---------------------------------------------------------------------


class Cli:
    """``quayside`` run in this process as its console script runs it (``main``), on its own home."""

    def __init__(
        self, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], home: Path
    ) -> None:
        for key in [k for k in os.environ if k.startswith("QUAYSIDE_")]:
            monkeypatch.delenv(key)
        monkeypatch.setenv("QUAYSIDE_HOME", str(home))
        self.capsys = capsys

    def __call__(self, *args: str) -> tuple[int, str]:
        """The exit code and everything printed."""
        self.capsys.readouterr()
        try:
            cli_main(list(args))
            code = 0
        except SystemExit as e:
            code = int(e.code or 0)
        captured = self.capsys.readouterr()
        return code, captured.out + captured.err


@pytest.fixture
def run_cli(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path) -> Cli:
    return Cli(monkeypatch, capsys, tmp_path / "home")


def one_line_error(result: tuple[int, str], problem: str) -> None:
    code, output = result
    assert code == 1, output
    assert "Traceback" not in output and "unexpected" not in output
    assert output.startswith("error:") and problem in output, output


def cli_met_the_rule(result: tuple[int, str], accepted: bool, case: Name, stored: list[str]) -> None:
    """An accepted name exits 0 and is stored exactly; a refused one is one line naming the problem, and nothing is stored."""
    if accepted:
        assert result[0] == 0, result
        assert stored == [case.value]
    else:
        one_line_error(result, case.problem)
        assert stored == []


@ALL
def test_cli_experiment_and_registry_names_meet_the_rule(
    case: Name, run_cli: Cli, tmp_path: Path, package: Path
):
    settings = Settings(home=tmp_path / "home")
    result = run_cli("experiments", "create", case.value)
    stored = [e.name for e in Client(settings=settings).list_experiments()]
    cli_met_the_rule(result, case.free, case, stored)

    result = run_cli("registry", "register", str(package), "--name", case.value)
    stored = [m.name for m in RegistryClient(settings=settings).list_models()]
    cli_met_the_rule(result, case.model, case, stored)


@ALL
def test_kubernetes_deployment_names_meet_the_rule(case: Name, run_cli: Cli, package: Path):
    spec = {"image": "reg/iris:1", "model_name": "iris", "model_digest": "0" * 64}
    args = ["deploy", str(package), "--target", "kubernetes", "--image", "reg/iris:1", "--dry-run"]
    code, output = run_cli(*args, "--name", case.value)
    if case.dns:
        assert DeploymentSpec(name=case.value, **spec).name == case.value
        assert code == 0, output
        assert f"name: {case.value}\n" in output
        return
    with pytest.raises(InvalidNameError, match="DNS label"):
        DeploymentSpec(name=case.value, **spec)
    if case.value:  # an empty --name means "the model's name"
        one_line_error((code, output), "deployment name")


@pytest.mark.parametrize("namespace", ["default\n", "Prod", "a_b", "x" * 64, "\u202eprod"])
def test_kubernetes_namespaces_meet_the_rule(namespace: str):
    spec = {"name": "iris", "image": "reg/iris:1", "model_name": "iris", "model_digest": "0" * 64}
    with pytest.raises(InvalidNameError, match="namespace name"):
        DeploymentSpec(namespace=namespace, **spec)
