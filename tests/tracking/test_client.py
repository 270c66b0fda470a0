"""The tracking Client, specified once and run four ways: local store or REST server, SQLite or PostgreSQL."""

from __future__ import annotations

import math
import uuid
from pathlib import Path

import pytest

from quayside import load_model
from quayside.errors import AlreadyExistsError, FilterError, InvalidStateError, NotFoundError, UsageError
from quayside.packager.manifest import read_manifest
from quayside.tracking.client import Client
from quayside.tracking.entities import Metric, RunStatus


def unique(prefix: str = "exp") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_experiments_are_created_found_renamed_and_deleted(client: Client):
    name = unique()
    created = client.create_experiment(name)
    assert client.get_experiment(name) == created
    assert client.get_experiment(created.id) == created
    assert name in [e.name for e in client.list_experiments()]

    renamed = client.rename_experiment(name, name + "-v2")
    assert renamed.id == created.id and renamed.name == name + "-v2"
    client.delete_experiment(renamed.id)
    assert name + "-v2" not in [e.name for e in client.list_experiments()]
    assert client.get_experiment(renamed.id).lifecycle == "deleted"


def test_an_experiment_name_is_taken_once(client: Client):
    name = unique()
    client.create_experiment(name)
    with pytest.raises(AlreadyExistsError, match=f"experiment '{name}' already exists"):
        client.create_experiment(name)
    assert client.get_or_create_experiment(name).name == name


def test_an_unknown_experiment_or_run_is_not_found(client: Client):
    with pytest.raises(NotFoundError, match="no experiment named 'nope-"):
        client.get_experiment(unique("nope"))
    with pytest.raises(NotFoundError, match="no run with id '0123456789abcdef0123456789abcdef'"):
        client.get_run("0123456789abcdef0123456789abcdef")


def test_a_run_keeps_its_params_metrics_tags_and_how_it_ended(client: Client):
    experiment = unique()
    run = client.create_run(experiment, run_name="baseline", tags={"team": "churn"})
    assert run.status is RunStatus.RUNNING and run.name == "baseline" and run.tags == {"team": "churn"}

    client.log_params(run.id, {"model": "rf", "n_estimators": 100})
    client.log_metric(run.id, "accuracy", 0.81, step=1)
    client.log_metrics(run.id, {"accuracy": 0.87, "loss": 0.3}, step=2)
    client.set_tags(run.id, {"team": "growth", "stage": "dev"})
    ended = client.set_terminated(run.id, "FINISHED", exit_code=0)

    assert ended.status is RunStatus.FINISHED and ended.exit_code == 0
    assert ended.end_time is not None and ended.end_time >= ended.start_time
    assert ended.params == {"model": "rf", "n_estimators": "100"}
    assert ended.latest_metrics == {"accuracy": 0.87, "loss": 0.3}
    assert ended.tags == {"team": "growth", "stage": "dev"}
    assert ended.experiment_id == client.get_experiment(experiment).id


def test_every_metric_point_is_kept_and_the_latest_is_the_highest_step(client: Client):
    run = client.create_run(unique())
    points = [Metric("loss", 1 / (step + 1), step, 1_700_000_000_000 + step) for step in range(50)]
    client.log_batch(run.id, metrics=list(reversed(points)))
    client.log_metric(run.id, "loss", float("nan"), step=7)
    client.log_metric(run.id, "gain", float("inf"))

    history = client.get_metric_history(run.id, "loss")
    assert [p.step for p in history] == sorted([*range(50), 7])
    assert [p.value for p in history if not math.isnan(p.value)] == [p.value for p in points]
    assert sum(math.isnan(p.value) for p in history) == 1
    latest = client.get_run(run.id).metrics
    assert latest["loss"].step == 49 and latest["loss"].value == pytest.approx(1 / 50)
    assert latest["gain"].value == math.inf


def test_a_param_is_written_once(client: Client):
    run = client.create_run(unique())
    client.log_param(run.id, "lr", 0.1)
    client.log_param(run.id, "lr", "0.1")  # the same value again is fine
    with pytest.raises(AlreadyExistsError, match=r"param 'lr' of run .* is already '0\.1'"):
        client.log_param(run.id, "lr", 0.2)
    assert client.get_run(run.id).params == {"lr": "0.1"}


def test_a_batch_lands_whole_or_not_at_all(client: Client):
    run = client.create_run(unique())
    client.log_param(run.id, "model", "rf")
    with pytest.raises(AlreadyExistsError):
        client.log_batch(run.id, metrics=[Metric("m", 1.0)], params={"model": "gbm"}, tags={"t": "x"})
    after = client.get_run(run.id)
    assert after.metrics == {} and after.tags == {}


def test_keys_the_search_language_could_not_name_are_refused(client: Client):
    run = client.create_run(unique())
    with pytest.raises(UsageError, match="metric key 'a;b' is invalid"):
        client.log_metric(run.id, "a;b", 1.0)
    with pytest.raises(UsageError, match="metric 'x' must be a number"):
        client.log_metric(run.id, "x", "high")  # type: ignore[arg-type]


def test_search_filters_on_metrics_params_tags_and_attributes_and_orders(client: Client):
    experiment = unique()
    runs = {}
    for name, accuracy, model, team in [
        ("a", 0.95, "rf", "growth"),
        ("b", 0.91, "rf", "x"),
        ("c", 0.97, "gbm", "growth"),
        ("d", 0.80, "rf", "growth"),
    ]:
        run = client.create_run(experiment, run_name=name, tags={"team": team})
        client.log_batch(
            run.id,
            metrics=[Metric("accuracy", 0.5, 0), Metric("accuracy", accuracy, 1)],
            params={"model": model},
        )
        runs[name] = run

    found = client.search_runs(
        experiment,
        filter="metrics.accuracy > 0.9 and params.model = 'rf' and tags.team != 'x'",
        order_by="metrics.accuracy desc",
    )
    assert [r.name for r in found] == ["a"]

    ordered = client.search_runs(experiment, order_by=["metrics.accuracy desc"], max_results=3)
    assert [r.name for r in ordered] == ["c", "a", "b"]
    assert [
        r.name for r in client.search_runs(experiment, "params.model in ('gbm') or name = 'd'", "name")
    ] == ["c", "d"]
    client.set_terminated(runs["b"].id, "FAILED")
    assert [r.name for r in client.search_runs(experiment, "status = 'failed'")] == ["b"]
    assert [
        r.name
        for r in client.search_runs(
            experiment, "tags.team like 'gro%' and not metrics.accuracy < 0.9", "name asc"
        )
    ] == ["a", "c"]


def test_sql_in_a_filter_is_a_parse_error_or_a_literal_never_sql(client: Client):
    experiment = unique()
    run = client.create_run(experiment)
    client.log_param(run.id, "x", "b")

    with pytest.raises(FilterError, match=r"invalid filter at column 23: unexpected '--'"):
        client.search_runs(experiment, "params.x = 'a' or 1=1 --")
    with pytest.raises(FilterError, match=r"at column 19: expected a column like metrics.<key>"):
        client.search_runs(experiment, "params.x = 'a' or 1=1")
    # Quoted, the same text is a value, compared as a string and matching nothing.
    assert client.search_runs(experiment, "params.x = 'a'' or 1=1 --'") == []
    client.log_param(run.id, "y", "a' or 1=1 --")
    assert [r.id for r in client.search_runs(experiment, "params.y = 'a'' or 1=1 --'")] == [run.id]
    assert client.search_runs(experiment, "params.x = 'b'")[0].id == run.id


def test_a_bad_filter_or_order_names_the_column(client: Client):
    with pytest.raises(
        FilterError, match="invalid filter at column 20: expected a quoted string or a number, got 'and'"
    ):
        client.search_runs(None, "metrics.accuracy > and")
    with pytest.raises(FilterError, match="column 1: unknown run attribute 'colour'"):
        client.search_runs(None, "colour = 'red'")
    with pytest.raises(FilterError, match=r"params\.model holds strings; quote the value"):
        client.search_runs(None, "params.model = 5")
    with pytest.raises(FilterError, match="invalid order-by at column 18: expected 'asc', 'desc'"):
        client.search_runs(None, order_by="metrics.accuracy sideways")


def test_deleted_runs_leave_searches_and_take_no_more_logging(client: Client):
    experiment = unique()
    run = client.create_run(experiment)
    client.delete_run(run.id)
    assert client.search_runs(experiment) == []
    assert client.get_run(run.id).lifecycle == "deleted"
    with pytest.raises(InvalidStateError, match="is deleted"):
        client.log_metric(run.id, "m", 1.0)


def test_nested_runs_point_at_their_parent(client: Client):
    parent = client.create_run(unique())
    child = client.create_run(parent.experiment_id, run_name="fold-1", parent_run_id=parent.id)
    assert child.parent_run_id == parent.id
    assert [r.id for r in client.search_runs(parent.experiment_id, f"parent_run_id = '{parent.id}'")] == [
        child.id
    ]


def test_artifacts_round_trip_files_and_directories(client: Client, tmp_path: Path):
    run = client.create_run(unique())
    report = tmp_path / "report.txt"
    report.write_text("accuracy 0.9\n")
    plots = tmp_path / "plots"
    (plots / "roc").mkdir(parents=True)
    (plots / "roc" / "curve.csv").write_text("0,0\n1,1\n")
    (plots / "pr.csv").write_bytes(bytes(range(256)) * 100)

    assert client.log_artifact(run.id, report).path == "report.txt"
    client.log_artifact(run.id, report, artifact_path="reports/final")
    logged = client.log_artifacts(run.id, plots, artifact_path="plots")
    assert sorted(a.path for a in logged) == ["plots/pr.csv", "plots/roc/curve.csv"]

    top = client.list_artifacts(run.id)
    assert [(a.path, a.is_dir) for a in top] == [("plots", True), ("report.txt", False), ("reports", True)]
    assert [a.path for a in client.list_artifacts(run.id, "plots", recursive=True)] == [
        "plots/pr.csv",
        "plots/roc",
        "plots/roc/curve.csv",
    ]
    copy = client.download_artifacts(run.id, "plots", tmp_path / "download")
    assert (copy / "pr.csv").read_bytes() == (plots / "pr.csv").read_bytes()
    assert (copy / "roc" / "curve.csv").read_text() == "0,0\n1,1\n"
    single = client.download_artifacts(run.id, "reports/final/report.txt", tmp_path / "one")
    assert single.read_text() == "accuracy 0.9\n"
    with pytest.raises(NotFoundError, match="has no artifact"):
        client.download_artifacts(run.id, "missing.txt", tmp_path / "none")


@pytest.mark.parametrize("path", ["../x", "/etc/passwd", "a/../../b"])
def test_artifact_paths_that_escape_the_run_are_refused_and_nothing_is_written(
    client: Client, target, tmp_path: Path, path: str
):
    run = client.create_run(unique())
    source = tmp_path / "x"
    source.write_text("escaped")
    before = target.stored()
    with pytest.raises(UsageError, match="artifact path"):
        client.backend.upload_artifact(run.id, source, path)
    assert target.stored() - before == set()


def test_log_model_saves_a_package_and_records_its_digest_signature_and_source_run(
    client: Client, iris_classifier, iris, tmp_path: Path
):
    X, _ = iris
    run = client.create_run(unique())
    logged = client.log_model(run.id, iris_classifier, "model", input_example=X.head(10))

    assert logged.uri == f"runs:/{run.id}/model" and logged.flavor == "sklearn"
    assert [i["name"] for i in logged.signature["inputs"]["columns"]] == list(X.columns)
    assert client.get_run(run.id).models == (logged,)

    package = client.download_artifacts(run.id, "model", tmp_path)
    manifest = read_manifest(package)
    assert manifest.source_run == run.id
    assert manifest.digest() == logged.digest
    predictions = load_model(package, trust=True).predict(X.head(3))
    assert predictions["label"].tolist() == iris_classifier.predict(X.head(3)).tolist()
