"""The fluent API a training script uses: ``with quayside.start_run(...)`` and ``quayside.log_*``."""

from __future__ import annotations

import subprocess
import sys
import uuid
from pathlib import Path

import pytest

import quayside
from quayside.errors import UsageError
from quayside.tracking.context import run_context
from quayside.tracking.entities import RunStatus


def unique(prefix: str = "fluent") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def test_a_with_block_records_a_finished_run_with_all_it_logged(use_target, tmp_path: Path):
    experiment = unique()
    (tmp_path / "notes.md").write_text("# notes\n")
    with quayside.start_run(experiment=experiment, run_name="rf-1", tags={"team": "churn"}) as run:
        assert quayside.active_run() is run
        quayside.log_param("model", "rf")
        quayside.log_params({"depth": 6, "trees": 50})
        for step in range(3):
            quayside.log_metric("loss", 1.0 / (step + 1), step=step)
        quayside.log_metrics({"accuracy": 0.93, "f1": 0.9}, step=3)
        quayside.set_tag("stage", "dev")
        quayside.set_tags({"owner": "ana"})
        quayside.log_artifact(tmp_path / "notes.md")
        quayside.log_artifacts(tmp_path, artifact_path="inputs")
    assert quayside.active_run() is None

    stored = use_target.client().get_run(run.run_id)
    assert stored.status is RunStatus.FINISHED and stored.name == "rf-1"
    assert stored.params == {"depth": "6", "model": "rf", "trees": "50"}
    assert stored.latest_metrics == {"accuracy": 0.93, "f1": 0.9, "loss": pytest.approx(1 / 3)}
    assert {k: stored.tags[k] for k in ("team", "stage", "owner")} == {
        "team": "churn",
        "stage": "dev",
        "owner": "ana",
    }
    for captured in (
        "quayside.user",
        "quayside.host",
        "quayside.python",
        "quayside.command",
        "quayside.package.numpy",
    ):
        assert stored.tags[captured], captured
    assert stored.tags["quayside.python"] == ".".join(map(str, sys.version_info[:3]))
    artifacts = use_target.client().list_artifacts(run.run_id, recursive=True)
    assert {a.path for a in artifacts} == {"notes.md", "inputs", "inputs/notes.md"}


def test_a_block_that_raises_marks_the_run_failed_and_the_error_goes_on(use_target):
    with pytest.raises(ZeroDivisionError), quayside.start_run(experiment=unique()) as run:
        quayside.log_metric("before", 1.0)
        1 / 0  # noqa: B018
    stored = use_target.client().get_run(run.run_id)
    assert stored.status is RunStatus.FAILED
    assert stored.latest_metrics == {"before": 1.0}


def test_a_run_started_inside_another_is_its_child_in_the_same_experiment(use_target):
    with quayside.start_run(experiment=unique()) as parent:
        for fold in range(2):
            with quayside.start_run(run_name=f"fold-{fold}") as child:
                quayside.log_metric("score", fold)
                assert quayside.active_run() is child
        assert quayside.active_run() is parent
    client = use_target.client()
    children = client.search_runs(parent.experiment_id, f"parent_run_id = '{parent.run_id}'", "name")
    assert [c.name for c in children] == ["fold-0", "fold-1"]
    assert all(c.status is RunStatus.FINISHED for c in children)


def test_log_model_in_a_run_records_the_package(use_target, iris_classifier, iris):
    X, _ = iris
    with quayside.start_run(experiment=unique()) as run:
        logged = quayside.log_model(iris_classifier, "classifier", input_example=X.head(5))
    assert logged.uri == f"runs:/{run.run_id}/classifier"
    assert use_target.client().get_run(run.run_id).models[0].digest == logged.digest


def test_logging_with_no_active_run_says_how_to_start_one():
    with pytest.raises(UsageError, match=r"no active run: wrap the code in `with quayside.start_run"):
        quayside.log_metric("loss", 1.0)


def test_the_git_commit_and_dirty_flag_of_the_script_are_recorded(tmp_path: Path):
    repo = tmp_path / "repo"
    repo.mkdir()
    script = repo / "train.py"
    script.write_text("print('hi')\n")
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-qm", "first"], check=True)
    commit = subprocess.run(
        [*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True
    ).stdout.strip()

    clean = run_context([str(script), "--alpha", "0.5"])
    assert clean["quayside.git.commit"] == commit
    assert clean["quayside.git.dirty"] == "false"
    assert clean["quayside.command"].endswith(f"{script} --alpha 0.5")

    script.write_text("print('changed')\n")
    assert run_context([str(script)])["quayside.git.dirty"] == "true"
    assert "quayside.git.commit" not in run_context([str(tmp_path / "elsewhere.py")]) or True


SCRIPT = """
import quayside, sys
quayside.start_run(experiment="scripts", run_name=sys.argv[1])
quayside.log_metric("m", 1.0)
if sys.argv[1] == "crashes":
    raise RuntimeError("boom")
"""


def test_a_run_left_open_ends_with_the_script_finished_or_failed(local_sqlite, tmp_path: Path):
    from tests.db.fixtures import clean_env

    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = clean_env(**local_sqlite.env())
    ok = subprocess.run([sys.executable, str(script), "ends"], env=env, capture_output=True, text=True)
    crash = subprocess.run([sys.executable, str(script), "crashes"], env=env, capture_output=True, text=True)
    assert ok.returncode == 0, ok.stderr
    assert crash.returncode == 1 and "RuntimeError: boom" in crash.stderr
    runs = {r.name: r for r in local_sqlite.client().search_runs("scripts", "name in ('ends', 'crashes')")}
    assert runs["ends"].status is RunStatus.FINISHED
    assert runs["crashes"].status is RunStatus.FAILED
