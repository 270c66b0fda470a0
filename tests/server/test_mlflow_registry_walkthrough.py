"""MLflow's own model-registry walkthrough, unchanged, from the real ``mlflow`` client against ``quayside server``.

The walkthrough (below) autologs a scikit-learn model, registers it from its run, points an
alias at it, moves it to Staging, searches the versions and loads ``models:/churn@champion``
and ``models:/churn/1`` with ``mlflow.pyfunc.load_model``: MLflow loads the files it logged,
kept with the version, and predicts what the fitted model itself predicts. The same versions,
stages and aliases are what ``quayside registry versions`` and the web UI show. Its move to
Production is refused (no load test has passed: the message names ``quayside promote``) and
changes nothing; after ``quayside promote`` the same client's move succeeds.

The scripts run in MLflow's venv (tests/venvs.py), twice in all, since each costs seconds.

With auth on, a version's MLflow files (``mlflow-artifacts:/registered-models/<name>/<version>``)
are read with read permission on the model and never written, whoever asks.
"""

from __future__ import annotations

import json
import re
import subprocess
import textwrap
from pathlib import Path

import cloudpickle
import httpx
import pytest
import yaml
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from quayside.compose.clients import RegistryClient
from quayside.config import Settings
from quayside.identity.model import Level, Resource, ResourceKind
from tests.db.fixtures import QUAYSIDE, Server, clean_env
from tests.server.auth_fixtures import start_auth_server
from tests.server.test_mlflow_compat import run_mlflow_script

# MLflow's walkthrough as an MLflow user writes it; it prints what MLflow's own client read back.
WALKTHROUGH = textwrap.dedent(
    """
    import json, sys

    import mlflow, mlflow.sklearn, pandas
    from mlflow import MlflowClient
    from mlflow.exceptions import MlflowException
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    mlflow.set_experiment(sys.argv[1])
    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    X = pandas.DataFrame(X, columns=["tenure", "monthly_charges", "support_calls", "contract_months"])

    mlflow.sklearn.autolog()
    with mlflow.start_run() as run:
        model = LogisticRegression(max_iter=500).fit(X, y)

    registered = mlflow.register_model(f"runs:/{run.info.run_id}/model", "churn")
    client = MlflowClient()
    client.set_registered_model_alias("churn", "champion", registered.version)
    client.transition_model_version_stage("churn", registered.version, "Staging")
    found = client.search_model_versions("name='churn'")
    champion = mlflow.pyfunc.load_model("models:/churn@champion").predict(X)
    by_number = mlflow.pyfunc.load_model(f"models:/churn/{registered.version}").predict(X)

    try:
        client.transition_model_version_stage("churn", registered.version, "Production")
        refused = None
    except MlflowException as e:
        refused = {"error_code": e.error_code, "message": e.message}
    after = client.get_model_version("churn", registered.version)

    def shown(v):
        return {"version": str(v.version), "stage": v.current_stage, "aliases": list(v.aliases), "run_id": v.run_id}

    print(json.dumps({
        "run_id": run.info.run_id,
        "registered": shown(registered) | {"source": registered.source, "status": registered.status},
        "searched": [shown(v) for v in found],
        "own": model.predict(X).tolist(),
        "champion": champion.tolist(),
        "by_number": by_number.tolist(),
        "refused": refused,
        "after_refusal": shown(after),
    }))
    """
)

PRODUCTION = textwrap.dedent(
    """
    import json

    from mlflow import MlflowClient

    client = MlflowClient()
    moved = client.transition_model_version_stage("churn", "1", "Production")
    print(json.dumps({"stage": moved.current_stage, "read_back": client.get_model_version("churn", "1").current_stage}))
    """
)


@pytest.fixture
def server(own_server: Server) -> Server:
    return own_server.start()


def _script(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def _quayside(server: Server, tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [QUAYSIDE, *args],
        env=clean_env(QUAYSIDE_HOME=str(tmp_path / "cli"), QUAYSIDE_TRACKING_URI=server.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, f"quayside {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def _versions(server: Server, tmp_path: Path) -> list[tuple]:
    listed = json.loads(_quayside(server, tmp_path, "registry", "versions", "churn", "--json").stdout)
    return [(v["version"], v["stage"], v["aliases"], v["source_run_id"]) for v in listed]


def _ui_row(server: Server, version: int) -> str:
    page = httpx.get(f"{server.url}/models/churn", timeout=30)
    assert page.status_code == 200, page.text
    row = re.search(rf'<tr id="version-{version}">(.*?)</tr>', page.text, re.DOTALL)
    assert row is not None, page.text
    return row.group(1)


def test_mlflows_registry_walkthrough_runs_unchanged_and_its_production_move_waits_for_quayside_promote(
    server: Server, mlflow_venv, tmp_path: Path
):
    walked = run_mlflow_script(
        _script(tmp_path, "walkthrough.py", WALKTHROUGH), server, mlflow_venv, tmp_path
    )
    run_id = walked["run_id"]

    # MLflow 3 registers runs:/<run>/model by its artifact URI; the version is ready at once.
    assert walked["registered"]["source"] == f"mlflow-artifacts:/{run_id}/model"
    assert walked["registered"]["status"] == "READY" and walked["registered"]["version"] == "1"
    staged = {"version": "1", "stage": "Staging", "aliases": ["champion"], "run_id": run_id}
    assert walked["searched"] == [staged]
    # MLflow loads what it logged, through the version's download URI, and predicts as the model does.
    assert walked["champion"] == walked["own"] and walked["by_number"] == walked["own"]

    # Quayside's CLI and web UI show the same version, stage and alias.
    assert _versions(server, tmp_path) == [(1, "staging", ["champion"], run_id)]
    row = _ui_row(server, 1)
    assert '<span class="stage stage-staging">staging</span>' in row and "<code>@champion</code>" in row

    # Production without a passing load test: refused in MLflow's error shape, naming the fix; nothing moved.
    refused = walked["refused"]
    assert refused is not None, "the move to Production went through without a load test"
    assert "quayside promote churn 1" in refused["message"]
    assert walked["after_refusal"] == staged
    registry = RegistryClient(settings=Settings(home=tmp_path / "client", tracking_uri=server.url))
    assert [e.to_value for e in registry.history("churn", 1) if e.action == "transition"] == ["staging"]

    # A passing load test of the version (served natively: autologging pickles the model) opens it.
    _quayside(
        server,
        tmp_path,
        "registry",
        "policy",
        "set",
        "churn",
        "--slo",
        "error_rate<=0.5",
        "--min-duration",
        "1s",
    )
    _quayside(
        server, tmp_path, "promote", "churn", "1", "--alias", "champion",
        "--duration", "2s", "--users", "2", "--spawn-rate", "2", "--trust",
    )  # fmt: skip
    moved = run_mlflow_script(_script(tmp_path, "production.py", PRODUCTION), server, mlflow_venv, tmp_path)
    assert moved["stage"] == moved["read_back"] == "Production"
    assert _versions(server, tmp_path) == [(1, "production", ["champion"], run_id)]
    assert '<span class="stage stage-production">production</span>' in _ui_row(server, 1)


# --- the registered versions' MLflow files, with auth on ------------------------------------------

MLFLOW_API = "/api/2.0/mlflow"
ARTIFACTS_API = "/api/2.0/mlflow-artifacts/artifacts"


def _pickled_mlflow_model() -> dict[str, bytes]:
    """The files of an MLflow scikit-learn model as MLflow pickles it (written here: registering never loads it)."""
    X, y = make_classification(n_samples=50, n_features=2, n_informative=2, n_redundant=0, random_state=0)
    columns = json.dumps(
        [{"type": "double", "name": "a", "required": True}, {"type": "double", "name": "b", "required": True}]
    )
    outputs = json.dumps([{"type": "tensor", "tensor-spec": {"dtype": "int64", "shape": [-1]}}])
    mlmodel = {
        "flavors": {
            "python_function": {
                "loader_module": "mlflow.sklearn",
                "model_path": "model.pkl",
                "python_version": "3.11.9",
            },
            "sklearn": {"pickled_model": "model.pkl", "serialization_format": "cloudpickle"},
        },
        "signature": {"inputs": columns, "outputs": outputs},
    }
    return {
        "MLmodel": yaml.safe_dump(mlmodel).encode(),
        "model.pkl": cloudpickle.dumps(LogisticRegression().fit(X, y)),
        "requirements.txt": b"scikit-learn==1.5.0\n",
    }


def test_a_versions_mlflow_files_need_read_on_the_model_and_are_never_written(tmp_path: Path):
    auth = start_auth_server(tmp_path, default_permission="none")
    try:
        auth.add_user("bob")
        with auth.api("admin") as admin, auth.api("bob") as bob:
            experiment = admin.post(f"{MLFLOW_API}/experiments/create", json={"name": "churn"}).json()
            run = admin.post(f"{MLFLOW_API}/runs/create", json={"experiment_id": experiment["experiment_id"]})
            run_id = run.json()["run"]["info"]["run_id"]
            files = _pickled_mlflow_model()
            for name, content in files.items():
                assert admin.put(f"{ARTIFACTS_API}/{run_id}/model/{name}", content=content).status_code == 200
            assert (
                admin.post(f"{MLFLOW_API}/registered-models/create", json={"name": "churn"}).status_code
                == 200
            )
            created = admin.post(
                f"{MLFLOW_API}/model-versions/create",
                json={"name": "churn", "source": f"mlflow-artifacts:/{run_id}/model", "run_id": run_id},
            )
            assert created.status_code == 200, created.text
            uri = admin.get(
                f"{MLFLOW_API}/model-versions/get-download-uri", params={"name": "churn", "version": "1"}
            )
            assert uri.json()["artifact_uri"] == "mlflow-artifacts:/registered-models/churn/1"

            listing, model_file = (
                f"{ARTIFACTS_API}?path=registered-models/churn/1",
                f"{ARTIFACTS_API}/registered-models/churn/1/MLmodel",
            )
            assert bob.get(listing).status_code == 403 and bob.get(model_file).status_code == 403
            auth.grant("bob", Resource(ResourceKind.MODEL, "churn"), Level.READ)
            listed = bob.get(listing)
            assert listed.status_code == 200, listed.text
            assert {f["path"] for f in listed.json()["files"]} == set(files)
            assert bob.get(model_file).content == files["MLmodel"]
            assert bob.put(model_file, content=b"flavors: {}").status_code == 403
            refused = admin.put(model_file, content=b"flavors: {}")
            assert refused.status_code == 400 and "never change" in refused.json()["message"]
            assert bob.get(model_file).content == files["MLmodel"]
    finally:
        auth.stop()
