"""MLflow model versions registered into Quayside's registry: the source resolved in a run's artifacts,
the model imported (ONNX where it loads as data, natively and unloaded where it is a pickle), MLflow's
own files kept in the package under its digest, and served back read-only for MLflow's client.

The MLflow model directories are written by the real MLflow (its own venv, tests/venvs.py) with
the script below, uploaded as a run's artifacts as MLflow's client does, and MLflow's own
predictions for them are what Quayside's loads must answer.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pandas as pd
import pytest
import yaml
from sklearn.datasets import make_classification

import quayside
from quayside.compose.mlflow_registry import (
    MLFLOW_FILES,
    list_mlflow_files,
    mlflow_download_uri,
    mlflow_file,
    register_mlflow_version,
    registered_path,
    resolve_source,
)
from quayside.errors import NotFoundError, PackageIntegrityError, UntrustedPackageError, UsageError
from quayside.packager.manifest import PackageReader, read_manifest
from quayside.registry.store import RegistryStore
from quayside.tracking.mlflow_models import MlflowModelStore
from quayside.tracking.store import TrackingStore
from tests.venvs import mlflow_venv  # noqa: F401  # the fixture

COLUMNS = ["tenure", "monthly_charges", "support_calls", "contract_months"]

# Runs in MLflow's venv: python save.py OUT_DIR. Writes OUT_DIR/skops (with an input example, as
# log_model(input_example=...) does), OUT_DIR/pickle (cloudpickle with a signature and no example,
# as mlflow.sklearn.autolog() logs), and OUT_DIR/predictions.json (MLflow's pyfunc predictions).
SAVE = textwrap.dedent(
    """
    import json, sys
    from pathlib import Path

    import cloudpickle, mlflow.pyfunc, mlflow.sklearn, numpy, pandas, sklearn
    from mlflow.models import infer_signature
    from sklearn.datasets import make_classification
    from sklearn.linear_model import LogisticRegression

    out = Path(sys.argv[1])
    X, y = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    X = pandas.DataFrame(X, columns=["tenure", "monthly_charges", "support_calls", "contract_months"])
    model = LogisticRegression(max_iter=500).fit(X, y)
    # Pinned as inference would pin them, without its subprocess.
    pins = [f"{d.__name__.replace('sklearn', 'scikit-learn')}=={d.__version__}"
            for d in (sklearn, cloudpickle, numpy, pandas)]
    mlflow.sklearn.save_model(model, out / "skops", serialization_format="skops",
                              input_example=X.head(10), pip_requirements=pins)
    mlflow.sklearn.save_model(model, out / "pickle", serialization_format="cloudpickle",
                              signature=infer_signature(X.head(10), model.predict(X.head(10))),
                              pip_requirements=pins)
    predictions = {name: mlflow.pyfunc.load_model(str(out / name)).predict(X).tolist()
                   for name in ("skops", "pickle")}
    (out / "predictions.json").write_text(json.dumps(predictions))
    """
)


@pytest.fixture(scope="module")
def mlflow_models(mlflow_venv, tmp_path_factory) -> Path:  # noqa: F811
    out = tmp_path_factory.mktemp("mlflow-models")
    (out / "save.py").write_text(SAVE)
    mlflow_venv.run(str(out / "save.py"), str(out), cwd=out)
    return out


@pytest.fixture(scope="module")
def rows() -> pd.DataFrame:
    X, _ = make_classification(n_samples=200, n_features=4, n_informative=3, n_redundant=0, random_state=0)
    return pd.DataFrame(X, columns=COLUMNS)


@pytest.fixture
def stores(tmp_path: Path) -> tuple[TrackingStore, RegistryStore]:
    url = f"sqlite:///{tmp_path / 'quayside.db'}"
    return TrackingStore(url, tmp_path / "artifacts"), RegistryStore(url, tmp_path / "artifacts")


def _log(tracking: TrackingStore, model_dir: Path, path: str = "model") -> str:
    """A run with the MLflow model directory uploaded under ``path``, file by file, as MLflow's client does."""
    experiment = tracking.get_or_create_experiment("churn")
    run = tracking.create_run(experiment.id)
    for file in sorted(p for p in model_dir.rglob("*") if p.is_file()):
        tracking.upload_artifact(run.id, file, f"{path}/{file.relative_to(model_dir).as_posix()}")
    return run.id


def _predictions(mlflow_models: Path) -> dict:
    return json.loads((mlflow_models / "predictions.json").read_text())


def test_a_skops_model_is_imported_converted_to_onnx_and_keeps_mlflows_files_under_its_digest(
    mlflow_models, stores, rows
):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "skops")

    version = register_mlflow_version(
        tracking,
        registry,
        "churn",
        f"mlflow-artifacts:/{run_id}/model",  # what MLflow 3's register_model sends for runs:/<run>/model
        run_id=run_id,
        description="first churn model",
        tags={"team": "growth"},
        actor="alice",
    )

    assert (version.name, version.version, version.stage) == ("churn", 1, "candidate")
    assert version.flavor == "sklearn" and version.onnx_servable
    assert version.source == f"mlflow-artifacts:/{run_id}/model" and version.source_run_id == run_id
    assert version.description.startswith("first churn model\n\n")
    assert "served as ONNX" in version.description
    assert version.tags == {"team": "growth"}

    package = registry.package_dir("churn", 1)
    manifest = PackageReader.open(package).manifest  # every digest checked, MLflow's files included
    assert version.digest == manifest.digest()
    original = sorted(
        p.relative_to(mlflow_models / "skops").as_posix()
        for p in (mlflow_models / "skops").rglob("*")
        if p.is_file()
    )
    kept = sorted(
        f.path.removeprefix(f"{MLFLOW_FILES}/")
        for f in manifest.files
        if f.path.startswith(f"{MLFLOW_FILES}/")
    )
    assert kept == original and "MLmodel" in kept and "model.skops" in kept
    for relative in original:
        assert (package / MLFLOW_FILES / relative).read_bytes() == (
            mlflow_models / "skops" / relative
        ).read_bytes()
    assert manifest.metadata["mlflow"]["source"] == version.source
    assert (
        manifest.metadata["imported_from"]["path"] == version.source
    )  # not the scratch copy it was read from
    assert manifest.source_run == run_id

    loaded = quayside.load_model(package)
    assert loaded.runtime == "onnx"
    assert loaded.predict(rows)["label"].tolist() == _predictions(mlflow_models)["skops"]


def test_the_digest_covers_mlflows_files_so_an_altered_one_is_refused(mlflow_models, stores):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "skops")
    version = register_mlflow_version(
        tracking, registry, "churn", f"runs:/{run_id}/model", run_id=None, description="", tags={}, actor="a"
    )
    where = registered_path(f"registered-models/churn/{version.version}/MLmodel")
    assert mlflow_file(registry, where).read_bytes() == (mlflow_models / "skops" / "MLmodel").read_bytes()

    altered = registry.package_dir("churn", 1) / MLFLOW_FILES / "MLmodel"
    altered.chmod(0o644)
    altered.write_text(altered.read_text() + "\n# changed\n")
    with pytest.raises(PackageIntegrityError):
        PackageReader.open(registry.package_dir("churn", 1))
    with pytest.raises(PackageIntegrityError, match="does not match its sha256"):
        mlflow_file(registry, where)


def test_a_pickled_model_is_registered_natively_without_being_unpickled_and_says_so(
    mlflow_models, stores, rows, monkeypatch
):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "pickle")

    import cloudpickle

    def refuse(*_args, **_kwargs):
        raise AssertionError("the server unpickled an uploaded model")

    monkeypatch.setattr(cloudpickle, "load", refuse)
    monkeypatch.setattr(cloudpickle, "loads", refuse)
    version = register_mlflow_version(
        tracking,
        registry,
        "churn",
        f"mlflow-artifacts:/{run_id}/model",
        run_id=run_id,
        description="",
        tags={},
        actor="alice",
    )
    monkeypatch.undo()

    assert version.flavor == "python" and not version.onnx_servable
    assert version.description.startswith(
        "Registered natively from MLflow's scikit-learn model (cloudpickle)"
    )
    manifest = read_manifest(registry.package_dir("churn", 1))
    assert manifest.signature.inputs.names == COLUMNS
    assert [(s.name, s.dtype) for s in manifest.signature.outputs.specs] == [("prediction", "int64")]
    assert any(r.startswith("scikit-learn==") for r in manifest.environment.requirements)
    assert not any(r.startswith("mlflow") for r in manifest.environment.requirements)
    assert "pickle" in manifest.metadata["native_because"]
    assert (registry.package_dir("churn", 1) / "model.pkl").read_bytes() == (
        mlflow_models / "pickle" / "model.pkl"
    ).read_bytes()

    with pytest.raises(UntrustedPackageError):
        quayside.load_model(registry.package_dir("churn", 1))
    native = quayside.load_model(registry.package_dir("churn", 1), trust=True)
    assert native.predict(rows)["prediction"].tolist() == _predictions(mlflow_models)["pickle"]


def test_a_logged_models_uri_resolves_to_the_folder_of_its_source_run(mlflow_models, stores):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "skops", path="model-2")
    run = tracking.get_run(run_id)
    logged = MlflowModelStore(tracking.sessions).create(run_id, run.experiment_id, "model", "model-2")

    assert resolve_source(tracking, f"models:/{logged.id}").run_id == run_id
    version = register_mlflow_version(
        tracking, registry, "churn", f"models:/{logged.id}", run_id=None, description="", tags={}, actor="a"
    )
    assert version.source == f"models:/{logged.id}" and version.source_run_id == run_id


def test_the_mlflow_files_list_and_download_as_mlflows_artifact_routes_need(mlflow_models, stores):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "skops")
    version = register_mlflow_version(
        tracking,
        registry,
        "churn",
        f"runs:/{run_id}/model",
        run_id=run_id,
        description="",
        tags={},
        actor="a",
    )

    uri = mlflow_download_uri(version)
    assert uri == "mlflow-artifacts:/registered-models/churn/1"
    root = registered_path(uri.removeprefix("mlflow-artifacts:/"))
    listed = {info.path: info for info in list_mlflow_files(registry, root)}
    assert {"MLmodel", "model.skops", "input_example.json"} <= set(listed)
    assert (
        not listed["MLmodel"].is_dir
        and listed["MLmodel"].size == (mlflow_models / "skops" / "MLmodel").stat().st_size
    )
    assert registered_path(f"{run_id}/model/MLmodel") is None  # a run's artifacts stay the run's

    with pytest.raises(NotFoundError, match=r"no MLflow file 'quayside\.yaml'"):
        mlflow_file(registry, registered_path("registered-models/churn/1/quayside.yaml"))
    with pytest.raises(NotFoundError, match="no MLflow file"):
        mlflow_file(registry, registered_path("registered-models/churn/1/../model.pkl"))
    with pytest.raises(NotFoundError, match="no version 7"):
        list_mlflow_files(registry, registered_path("registered-models/churn/7"))
    with pytest.raises(UsageError, match="registered-models/<name>/<version>"):
        registered_path("registered-models/churn/latest")


def test_unknown_runs_and_folders_are_not_found_and_what_is_not_an_mlflow_model_is_refused(
    mlflow_models, stores, tmp_path
):
    tracking, registry = stores
    run_id = _log(tracking, mlflow_models / "skops")
    notes = tmp_path / "notes.txt"
    notes.write_text("not a model")
    tracking.upload_artifact(run_id, notes, "notes/notes.txt")

    def register(source: str, run: str | None = None):
        return register_mlflow_version(
            tracking, registry, "churn", source, run_id=run, description="", tags={}, actor="a"
        )

    with pytest.raises(NotFoundError):
        register(f"runs:/{'0' * 32}/model")
    with pytest.raises(NotFoundError, match="no MLflow model at artifact 'nothing'"):
        register(f"runs:/{run_id}/nothing")
    with pytest.raises(NotFoundError, match="no logged model"):
        register("models:/m-0000")
    with pytest.raises(UsageError, match="is not an MLflow model: it has no MLmodel file"):
        register(f"mlflow-artifacts:/{run_id}/notes")
    with pytest.raises(UsageError, match="not one Quayside registers from"):
        register("s3://bucket/model")
    with pytest.raises(UsageError, match=f"not of run '{'1' * 32}'"):
        register(f"runs:/{run_id}/model", run="1" * 32)
    with pytest.raises(NotFoundError):
        registry.get_model("churn")  # nothing was registered, not even the model


def test_a_pickled_model_without_a_signature_is_refused_with_what_to_do(mlflow_models, stores, tmp_path):
    tracking, registry = stores
    unsigned = tmp_path / "unsigned"
    unsigned.mkdir()
    for file in (mlflow_models / "pickle").iterdir():
        (unsigned / file.name).write_bytes(file.read_bytes())
    mlmodel = yaml.safe_load((unsigned / "MLmodel").read_text())
    del mlmodel["signature"]
    (unsigned / "MLmodel").write_text(yaml.safe_dump(mlmodel))
    run_id = _log(tracking, unsigned)

    with pytest.raises(UsageError, match="needs MLflow's signature"):
        register_mlflow_version(
            tracking,
            registry,
            "churn",
            f"runs:/{run_id}/model",
            run_id=run_id,
            description="",
            tags={},
            actor="a",
        )
