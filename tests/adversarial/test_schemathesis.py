"""schemathesis over both apps' OpenAPI, in process: no input the schema allows (or breaks) is a 5xx.

The Quayside server (``create_app`` on a SQLite file of the test's own, with an
experiment, a run and a registered model to find) and the serving app (a real ONNX
model on a tensor input, and one on a table of float, int and string columns) are each
driven through every operation of their OpenAPI: valid requests (``positive``), whose
answers must also match the documented schema and content type, and invalid ones
(``negative``), which must be refused with a 4xx. Every operation's failures are
collected, so one run reports all of them.
"""

from __future__ import annotations

import io
import tarfile
import warnings
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis import GenerationMode
from schemathesis.checks import content_type_conformance, not_a_server_error, response_schema_conformance
from starlette.testclient import TestClient

import quayside
from quayside.config import Settings
from quayside.server.app import create_app as create_server_app
from quayside.serving.app import create_app as create_serving_app
from quayside.serving.options import ServeOptions
from quayside.serving.runtime import load_runtime

# Small: the point is breadth over every operation, kept well inside CI's time.
EXAMPLES = {GenerationMode.POSITIVE: 20, GenerationMode.NEGATIVE: 10}
CHECKS = {
    GenerationMode.POSITIVE: [not_a_server_error, response_schema_conformance, content_type_conformance],
    GenerationMode.NEGATIVE: [not_a_server_error],
}


def fuzz(schema: Any, known: dict[str, Any] | None = None) -> list[str]:
    """Run every operation of ``schema`` in both modes; the failures, one text per operation and mode.

    ``known`` holds values for path parameters (a real run id, ...): each operation taking one
    gets valid requests a second time with it, so that they reach past the 404 of an unknown id.
    """
    failures = []
    operations = [result.ok() for result in schema.get_all_operations()]
    assert operations, "the schema has no operations: nothing would be fuzzed"
    # Deletions last, so the known things are still there for every other operation.
    for operation in sorted(operations, key=lambda op: op.method.upper() == "DELETE"):
        names = {p.name for p in operation.iter_parameters() if p.location == "path"}
        fixed = {name: value for name, value in (known or {}).items() if name in names}
        for mode, examples in EXAMPLES.items():
            # Invalid requests need no real ids (and fixed ids often leave nothing to make invalid).
            variants = [{}, fixed] if fixed and mode is GenerationMode.POSITIVE else [{}]
            for path_parameters in variants:
                failure = _run(operation, mode, examples, path_parameters)
                if failure is not None:
                    failures.append(
                        f"{operation.label} [{mode.value}, {path_parameters or 'generated ids'}]\n{failure}"
                    )
    return failures


def _run(operation: Any, mode: GenerationMode, examples: int, path_parameters: dict[str, Any]) -> str | None:
    strategy = operation.as_strategy(generation_mode=mode, path_parameters=path_parameters or None)

    @settings(max_examples=examples, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy)
    def check(case: Any) -> None:
        response = case.call()
        case.validate_response(response, checks=CHECKS[mode])

    try:
        check()
    except Unsatisfiable:
        return None  # nothing of this operation can be made invalid (no parameters, no body)
    except (Exception, BaseExceptionGroup) as e:  # schemathesis' FailureGroup: reported, not raised
        return str(e)
    return None


def _tar(package: Path) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for path in sorted(package.rglob("*")):
            if path.is_file():
                archive.add(path, arcname=str(path.relative_to(package)))
    return buffer.getvalue()


@pytest.fixture(scope="module")
def tensor_package(tmp_path_factory: pytest.TempPathFactory, diabetes_regressor, diabetes) -> Path:
    X, _ = diabetes
    path = tmp_path_factory.mktemp("fuzz-models") / "diabetes"
    quayside.save_model(diabetes_regressor, path, input_example=X[:20], to_onnx=True, name="diabetes")
    return path


@pytest.fixture(scope="module")
def table_package(tmp_path_factory: pytest.TempPathFactory, mixed_pipeline) -> Path:
    pipeline, X = mixed_pipeline
    path = tmp_path_factory.mktemp("fuzz-models") / "plans"
    quayside.save_model(pipeline, path, input_example=X.head(20), to_onnx=True, name="plans")
    return path


def test_the_quayside_server_answers_no_5xx_and_as_documented(tmp_path: Path, tensor_package: Path):
    # schemathesis calls the app as http://testserver: a name the Host allow-list must be told of.
    app = create_server_app(Settings(home=tmp_path, allowed_hosts="testserver"))
    with TestClient(app, base_url="http://localhost") as http:
        experiment = http.post("/api/tracking/experiments", json={"name": "fuzzed"}).json()
        run = http.post("/api/tracking/runs", json={"experiment_id": experiment["id"]}).json()
        http.put(f"/api/tracking/runs/{run['id']}/artifacts/file", params={"path": "a.txt"}, content=b"x")
        registered = http.post(
            "/api/registry/models/fuzzed/versions",
            content=_tar(tensor_package),
            headers={"content-type": "application/x-tar"},
        )
        assert registered.status_code == 201, registered.text
    known = {"experiment_id": experiment["id"], "run_id": run["id"], "name": "fuzzed", "version": 1}

    schema = schemathesis.openapi.from_asgi("/openapi.json", app)
    failures = fuzz(schema, known)

    assert not failures, "\n\n".join(failures)


@pytest.mark.parametrize("package_name", ["tensor_package", "table_package"])
def test_the_serving_app_answers_no_5xx_and_as_documented(request: pytest.FixtureRequest, package_name: str):
    package: Path = request.getfixturevalue(package_name)
    runtime = load_runtime(package)
    app = create_serving_app(runtime, ServeOptions(quiet=True, allowed_hosts=("testserver",)))
    with warnings.catch_warnings(), TestClient(app):  # the lifespan starts the model server
        warnings.simplefilter("ignore", DeprecationWarning)
        schema = schemathesis.openapi.from_asgi("/openapi.json", app)
        failures = fuzz(schema, {"model_name": runtime.name})

    assert not failures, "\n\n".join(failures)
