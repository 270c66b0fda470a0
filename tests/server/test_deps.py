"""The server's typed state: built once by ``create_app``, shared by the REST routers, the MLflow adapter and the UI."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from quayside.config import Settings
from quayside.server.app import create_app
from quayside.server.deps import AppState, app_state


def test_create_app_builds_one_frozen_state_over_the_settings(tmp_path: Path):
    settings = Settings(home=tmp_path)
    app = create_app(settings)
    state = app_state(app)
    assert isinstance(state, AppState)
    assert state.settings is settings
    assert state.tracking.artifacts.store.root == settings.artifact_dir
    assert state.mlflow_models.sessions is state.mlflow_datasets.sessions is state.tracking.sessions
    with pytest.raises(dataclasses.FrozenInstanceError):
        state.tracking = state.tracking  # type: ignore[misc]


def test_rest_mlflow_and_the_ui_read_and_write_through_the_same_stores(tmp_path: Path):
    app = create_app(Settings(home=tmp_path))
    state = app_state(app)
    with TestClient(app, base_url="http://localhost") as http:
        experiment = http.post("/api/tracking/experiments", json={"name": "shared"}).json()
        run = http.post("/api/tracking/runs", json={"experiment_id": experiment["id"], "name": "r1"}).json()
        logged = http.post(
            "/api/2.0/mlflow/runs/log-parameter", json={"run_id": run["id"], "key": "lr", "value": "0.1"}
        )
        assert logged.status_code == 200, logged.text
        page = http.get(f"/runs/{run['id']}", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "r1" in page.text and "0.1" in page.text
    assert state.tracking.get_run(run["id"]).params == {"lr": "0.1"}
