"""MLflow's tracking API on `quayside server`: an unchanged MLflow script logs into Quayside's store.

The script (tests/server/data/mlflow_train.py) runs with the real ``mlflow`` client in its own
venv (tests/venvs.py); what it logged is read back through Quayside's client and CLI.
"""

from __future__ import annotations

import json
import os
import subprocess
import uuid
from pathlib import Path

import httpx
import pytest
from sklearn.datasets import load_iris

import quayside
from quayside.config import Settings
from quayside.tracking.client import Client
from tests.db.fixtures import QUAYSIDE, Server, clean_env

SCRIPT = Path(__file__).parent / "data" / "mlflow_train.py"
LOG_MODEL_SCRIPT = Path(__file__).parent / "data" / "mlflow_log_model.py"
TRACKING_MORE_SCRIPT = Path(__file__).parent / "data" / "mlflow_tracking_more.py"
MLFLOW = "/api/2.0/mlflow"


@pytest.fixture
def server(own_server: Server) -> Server:
    return own_server.start()


def run_mlflow_script(script: Path, server: Server, mlflow_venv, tmp_path: Path) -> dict:
    """Run an MLflow script against the server; what it printed (its run ids and MLflow's readback)."""
    experiment = f"mlflow-{uuid.uuid4().hex[:8]}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "QUAYSIDE_"))}
    env |= {"MLFLOW_TRACKING_URI": server.url, "MLFLOW_DISABLE_TELEMETRY": "true", "DO_NOT_TRACK": "1"}
    result = mlflow_venv.run(str(script), experiment, cwd=tmp_path, env=env)
    return json.loads(result.stdout.strip().splitlines()[-1]) | {"experiment": experiment}


@pytest.fixture
def logged(server: Server, mlflow_venv, tmp_path: Path) -> dict:
    return run_mlflow_script(SCRIPT, server, mlflow_venv, tmp_path)


def test_an_unchanged_mlflow_script_logs_params_metrics_tags_and_artifacts_into_quayside(
    logged: dict, server: Server, tmp_path: Path
):
    client = Client(settings=Settings(home=tmp_path / "client", tracking_uri=server.url))
    run = client.get_run(logged["run_id"])

    assert run.name == "logreg"
    assert run.status.value == "FINISHED" and run.end_time is not None
    assert client.get_experiment(run.experiment_id).name == logged["experiment"]
    assert run.params == {"C": "0.5", "solver": "lbfgs", "max_iter": "200"}
    history = [(m.step, m.value) for m in client.get_metric_history(run.id, "loss")]
    assert history == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25), (4, 0.2)]
    assert run.metrics["accuracy"].step == 4 and run.metrics["f1"].value == 0.5
    assert {"team": "growth", "stage": "dev", "data": "iris"}.items() <= run.tags.items()
    assert run.tags["mlflow.source.name"].endswith("mlflow_train.py")
    paths = {a.path for a in client.list_artifacts(run.id, recursive=True)}
    assert paths == {"notes.txt", "reports", "reports/notes.txt"}

    child = client.get_run(logged["child_run_id"])
    assert child.parent_run_id == run.id and child.name == "child"

    # MLflow's own client read back exactly what Quayside stored.
    assert logged["params"] == dict(run.params)
    assert logged["metrics"] == run.latest_metrics
    assert logged["loss_history"] == [list(point) for point in history]
    assert {k: v for k, v in logged["tags"].items() if k != "mlflow.runName"} == dict(run.tags)
    assert logged["tags"]["mlflow.runName"] == "logreg"
    assert logged["experiment_id"] == str(run.experiment_id)
    assert logged["status"] == "FINISHED"
    assert logged["artifacts"] == ["notes.txt", "reports"]
    assert logged["downloaded"] == "trained on iris\n"
    assert set(logged["searched"]) == {run.id, child.id}


def test_quayside_runs_search_sees_the_mlflow_runs(logged: dict, server: Server, tmp_path: Path):
    result = subprocess.run(
        [
            QUAYSIDE,
            "runs",
            "search",
            "-x",
            logged["experiment"],
            "--filter",
            "params.solver = 'lbfgs'",
            "--json",
        ],
        env=clean_env(QUAYSIDE_HOME=str(tmp_path / "cli"), QUAYSIDE_TRACKING_URI=server.url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout)
    assert [r["id"] for r in found] == [logged["run_id"]]
    assert found[0]["params"]["C"] == "0.5"


def test_autologging_and_log_model_log_into_quayside_and_the_model_imports_predicting_like_mlflow(
    server: Server, mlflow_venv, tmp_path: Path
):
    logged = run_mlflow_script(LOG_MODEL_SCRIPT, server, mlflow_venv, tmp_path)
    client = Client(settings=Settings(home=tmp_path / "client", tracking_uri=server.url))

    # Autologging's params, training metrics, dataset and model all landed.
    auto = client.get_run(logged["autologged"]["run_id"])
    assert auto.params["max_iter"] == "300"
    assert logged["autologged"]["metrics"] == auto.latest_metrics
    assert auto.metrics["training_accuracy_score"].value > 0.9
    assert [(name, tags) for name, _, tags in logged["autologged"]["datasets"]] == [
        ("dataset", {"mlflow.data.context": "train"})
    ]
    assert len(logged["autologged"]["models"]) == 1

    # log_model copies the run's metrics onto the model: the run's own series is not doubled.
    explicit = client.get_run(logged["explicit"]["run_id"])
    history = [(m.step, m.value) for m in client.get_metric_history(explicit.id, "loss")]
    assert history == [(0, 1.0), (1, 0.5), (2, 1 / 3), (3, 0.25), (4, 0.2)]
    assert logged["explicit"]["loss_history"] == [list(point) for point in history]
    assert logged["explicit"]["datasets"] == ["iris"]

    # The logged model: ready, an artifact folder of its run, found by MLflow's search.
    model = logged["model"]
    assert logged["explicit"]["models"] == [model["id"]]
    assert model["status"] == "READY" and model["source_run_id"] == explicit.id
    assert model["artifact_location"] == f"mlflow-artifacts:/{explicit.id}/model"
    assert set(model["searched"]) == {model["id"], logged["autologged"]["models"][0]}
    files = {a.path for a in client.list_artifacts(explicit.id, "model", recursive=True)}
    assert {"model/MLmodel", "model/model.skops", "model/input_example.json"} <= files

    # Quayside imports the model from the run and predicts exactly as MLflow's own load of it.
    imported = subprocess.run(
        [QUAYSIDE, "import", "mlflow", f"runs:/{explicit.id}/model", "-o", str(tmp_path / "iris")],
        env=clean_env(QUAYSIDE_HOME=str(tmp_path / "cli"), QUAYSIDE_TRACKING_URI=server.url),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert imported.returncode == 0, imported.stderr
    assert "imported model (sklearn → sklearn)" in imported.stdout
    package = quayside.load_model(tmp_path / "iris")
    assert package.runtime == "onnx"
    rows = load_iris(return_X_y=True, as_frame=True)[0]
    assert package.predict(rows)["label"].tolist() == logged["predictions"]


def test_the_rest_of_the_tracking_api_answers_mlflows_client_and_a_logged_model_imports_by_its_uri(
    server: Server, mlflow_venv, tmp_path: Path
):
    """Experiment tags, deleting tags, restoring runs and experiments, searching deleted runs,
    logged-model search and delete: one unchanged MLflow script, then ``models:/m-<id>`` imported."""
    answered = run_mlflow_script(TRACKING_MORE_SCRIPT, server, mlflow_venv, tmp_path)
    client = Client(settings=Settings(home=tmp_path / "client", tracking_uri=server.url))

    tags = answered["experiment_tags"]
    assert tags["get"] == tags["by_name"] == {"stage": "prod", "owner": "ada"}
    assert tags["searched"] == [tags["get"]]
    assert tags["missing_tag"] == "RESOURCE_DOES_NOT_EXIST"
    experiment = client.get_experiment(int(answered["experiment_id"]))
    assert experiment.name == answered["experiment"] and experiment.tags == tags["get"]

    runs = answered["runs"]
    assert runs["kept_tags"] == {"b": "2"} and runs["missing_tag"] == "RESOURCE_DOES_NOT_EXIST"
    assert (runs["deleted_only"], runs["active_only"], runs["all"]) == (["gone"], ["kept"], ["gone", "kept"])
    assert runs["restore_active"] == "INVALID_PARAMETER_VALUE"
    assert runs["restored"] == "active" and runs["after_restore"] == ["gone", "kept"]

    models = answered["models"]
    weak, strong = models["logged"]["0.01"], models["logged"]["1.0"]
    assert weak["accuracy"] < strong["accuracy"]
    assert models["by_param"] == models["by_metric"] == ["lr-1.0"]
    assert models["by_name_and_status"] == ["lr-0.01"]
    assert models["accuracy_desc"] == ["lr-1.0", "lr-0.01"] and models["name_asc"] == ["lr-0.01", "lr-1.0"]
    assert models["bad_filter"] == "INVALID_PARAMETER_VALUE"
    assert models["after_delete"] == ["lr-1.0"] and models["get_deleted"] == "RESOURCE_DOES_NOT_EXIST"

    gone = answered["experiments"]
    assert gone["deleted"] == "deleted" and gone["deleted_only"] and gone["active_runs_while_deleted"] == []
    assert gone["restored"] == "active" and gone["runs_after_restore"] == ["gone", "kept", "models"]
    assert gone["restore_active"] == "INVALID_PARAMETER_VALUE"

    # MLflow 3's logged-model URI imports through the same server, predicting as MLflow's own load.
    env = clean_env(QUAYSIDE_HOME=str(tmp_path / "cli"), QUAYSIDE_TRACKING_URI=server.url)

    def quayside_import(uri: str, output: str) -> subprocess.CompletedProcess[str]:
        command = [QUAYSIDE, "import", "mlflow", uri, "-o", str(tmp_path / output)]
        return subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)

    imported = quayside_import(f"models:/{strong['id']}", "strong")
    assert imported.returncode == 0, imported.stderr
    assert "(sklearn → sklearn)" in imported.stdout
    package = quayside.load_model(tmp_path / "strong")
    rows = load_iris(return_X_y=True, as_frame=True)[0]
    assert package.predict(rows)["label"].tolist() == models["strong_predictions"]

    deleted = quayside_import(f"models:/{weak['id']}", "weak")
    assert deleted.returncode == 1
    assert f"no logged model with id '{weak['id']}'" in " ".join(deleted.stderr.split())
    registered = quayside_import("models:/churn/1", "churn")
    assert registered.returncode == 1 and "not an MLflow logged model" in " ".join(registered.stderr.split())


# --- the wire format the client parses --------------------------------------------------------


@pytest.fixture
def http(sqlite_server) -> httpx.Client:
    with httpx.Client(base_url=sqlite_server.url + MLFLOW, timeout=30) as client:
        yield client


def _run(http: httpx.Client) -> dict:
    created = http.post("/experiments/create", json={"name": f"wire-{uuid.uuid4().hex[:8]}"})
    assert created.status_code == 200, created.text
    experiment_id = created.json()["experiment_id"]
    response = http.post(
        "/runs/create",
        json={
            "experiment_id": experiment_id,
            "start_time": 1700000000000,
            "tags": [{"key": "a", "value": "b"}],
        },
    )
    assert response.status_code == 200, response.text
    return response.json()["run"]


def test_runs_come_back_in_mlflows_shape_with_string_experiment_ids_and_ms_times(http: httpx.Client):
    run = _run(http)
    info = run["info"]
    assert info["run_id"] == info["run_uuid"] and len(info["run_id"]) == 32
    assert isinstance(info["experiment_id"], str) and info["experiment_id"].isdigit()
    assert info["status"] == "RUNNING" and info["lifecycle_stage"] == "active"
    assert info["start_time"] == 1700000000000 and "end_time" not in info
    assert info["artifact_uri"] == f"mlflow-artifacts:/{info['run_id']}"
    assert {"key": "a", "value": "b"} in run["data"]["tags"]

    ended = http.post(
        "/runs/update", json={"run_id": info["run_id"], "status": "KILLED", "end_time": 1700000001000}
    )
    assert ended.json()["run_info"]["status"] == "KILLED"
    assert ended.json()["run_info"]["end_time"] == 1700000001000


def test_the_default_experiment_0_is_quaysides_default_experiment(http: httpx.Client):
    experiment = http.get("/experiments/get", params={"experiment_id": "0"}).json()["experiment"]
    assert experiment["name"] == "default"
    run = http.post("/runs/create", json={"experiment_id": "0"}).json()["run"]
    assert run["info"]["experiment_id"] == experiment["experiment_id"]


def test_errors_are_mlflow_error_bodies_with_the_status_the_client_expects(http: httpx.Client):
    missing = http.get("/experiments/get-by-name", params={"experiment_name": "no-such-experiment"})
    assert missing.status_code == 404
    assert missing.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "no experiment named 'no-such-experiment'",
    }

    unknown = http.post("/runs/no-such-call", json={})
    assert unknown.status_code == 404 and unknown.json()["error_code"] == "ENDPOINT_NOT_FOUND"

    bad = http.post("/runs/log-metric", json={"run_id": "0" * 32, "key": "loss"})
    assert bad.status_code == 400 and bad.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert "value" in bad.json()["message"]

    run_id = _run(http)["info"]["run_id"]
    assert (
        http.post("/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "1"}).status_code == 200
    )
    changed = http.post("/runs/log-parameter", json={"run_id": run_id, "key": "p", "value": "2"})
    assert changed.status_code == 400 and changed.json()["error_code"] == "INVALID_PARAMETER_VALUE"

    assert http.post("/runs/delete", json={"run_id": run_id}).status_code == 200
    deleted = http.post("/runs/set-tag", json={"run_id": run_id, "key": "k", "value": "v"})
    assert deleted.status_code == 400 and "deleted" in deleted.json()["message"]

    bad_filter = http.post("/runs/search", json={"experiment_ids": ["0"], "filter": "metrics.x >"})
    assert bad_filter.status_code == 400 and bad_filter.json()["error_code"] == "INVALID_PARAMETER_VALUE"


def test_nan_and_infinite_metrics_travel_as_strings_and_back(http: httpx.Client):
    run_id = _run(http)["info"]["run_id"]
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "m", "value": "NaN", "timestamp": 1, "step": 0},
            {"key": "m", "value": "Infinity", "timestamp": 2, "step": 1},
        ],
    }
    assert http.post("/runs/log-batch", json=batch).status_code == 200
    history = http.get("/metrics/get-history", params={"run_id": run_id, "metric_key": "m"}).json()["metrics"]
    assert [(m["step"], m["value"]) for m in history] == [(0, "NaN"), (1, "Infinity")]


def test_run_search_pages_through_next_page_tokens(http: httpx.Client):
    experiment_id = _run(http)["info"]["experiment_id"]
    for _ in range(4):
        assert http.post("/runs/create", json={"experiment_id": experiment_id}).status_code == 200
    seen, token, pages = [], None, 0
    while True:
        body = {"experiment_ids": [experiment_id], "max_results": 2} | (
            {"page_token": token} if token else {}
        )
        page = http.post("/runs/search", json=body).json()
        seen += [r["info"]["run_id"] for r in page.get("runs", [])]
        pages += 1
        token = page.get("next_page_token")
        if not token:
            break
    assert len(seen) == len(set(seen)) == 5 and pages == 3


def test_logged_models_need_a_run_take_a_free_folder_and_refuse_what_they_cannot_do(http: httpx.Client):
    run = _run(http)["info"]
    run_id, experiment_id = run["run_id"], run["experiment_id"]
    orphan = http.post("/logged-models", json={"experiment_id": experiment_id, "name": "m"})
    assert orphan.status_code == 400 and "mlflow.start_run()" in orphan.json()["message"]

    body = {"experiment_id": experiment_id, "source_run_id": run_id, "name": "model"}
    first = http.post("/logged-models", json=body).json()["model"]["info"]
    assert first["status"] == "LOGGED_MODEL_PENDING" and first["model_id"].startswith("m-")
    upload = f"/api/2.0/mlflow-artifacts/artifacts/{run_id}/model/MLmodel"
    assert http.put(http.base_url.join(upload), content=b"flavors: {}\n").status_code == 200
    second = http.post("/logged-models", json=body).json()["model"]["info"]
    assert second["artifact_uri"] == f"mlflow-artifacts:/{run_id}/model-2"

    ready = http.patch(f"/logged-models/{first['model_id']}", json={"status": "LOGGED_MODEL_READY"})
    assert ready.json()["model"]["info"]["status"] == "LOGGED_MODEL_READY"
    bogus = http.patch(f"/logged-models/{first['model_id']}", json={"status": "DONE"})
    assert bogus.status_code == 400 and "LOGGED_MODEL_READY" in bogus.json()["message"]
    missing = http.get("/logged-models/m-0000")
    assert missing.status_code == 404 and missing.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"

    tagged = http.patch(
        f"/logged-models/{first['model_id']}/tags", json={"tags": [{"key": "k", "value": "v"}]}
    )
    assert tagged.status_code == 200
    got = http.get(f"/logged-models/{first['model_id']}").json()["model"]["info"]
    assert got["tags"] == [{"key": "k", "value": "v"}]
    assert http.delete(f"/logged-models/{first['model_id']}/tags/k").status_code == 200
    assert http.delete(f"/logged-models/{first['model_id']}/tags/k").status_code == 404

    filtered = http.post("/logged-models/search", json={"experiment_ids": [experiment_id], "filter": "x"})
    assert filtered.status_code == 400 and "unknown logged model attribute 'x'" in filtered.json()["message"]
    other_run = _run(http)["info"]["run_id"]
    foreign = http.post(
        "/runs/outputs", json={"run_id": other_run, "models": [{"model_id": first["model_id"]}]}
    )
    assert foreign.status_code == 400 and "was logged by run" in foreign.json()["message"]


def test_a_batch_whose_logged_model_is_missing_is_refused_whole(http: httpx.Client):
    run = _run(http)
    run_id = run["info"]["run_id"]
    batch = {
        "run_id": run_id,
        "metrics": [
            {"key": "loss", "value": 0.5, "timestamp": 1700000000001, "step": 0},
            {"key": "acc", "value": 0.9, "timestamp": 1700000000001, "step": 0, "model_id": "m-missing"},
        ],
        "params": [{"key": "lr", "value": "0.1"}],
        "tags": [{"key": "mlflow.runName", "value": "renamed"}, {"key": "t", "value": "x"}],
    }
    refused = http.post("/runs/log-batch", json=batch)
    assert refused.status_code == 404, refused.text
    assert refused.json() == {
        "error_code": "RESOURCE_DOES_NOT_EXIST",
        "message": "no logged model with id 'm-missing'",
    }
    after = http.get("/runs/get", params={"run_id": run_id}).json()["run"]
    assert after["info"]["run_name"] == run["info"]["run_name"]
    assert after["data"]["metrics"] == after["data"]["params"] == []
    assert {t["key"] for t in after["data"]["tags"]} == {"a", "mlflow.runName"}
    history = http.get("/metrics/get-history", params={"run_id": run_id, "metric_key": "loss"}).json()
    assert history.get("metrics", []) == []
