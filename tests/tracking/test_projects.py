"""`quayside run`: a project's entry point runs as a subprocess and is recorded as a run."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from quayside.errors import MalformedInputError, NotFoundError, UsageError
from quayside.tracking.entities import RunStatus
from quayside.tracking.projects import load_project, parse_assignments
from tests.db.fixtures import QUAYSIDE, clean_env

PROJECT = """
name: churn
environment:
  requirements: []
entry_points:
  main:
    parameters:
      alpha: {type: float, default: 0.5}
      epochs: int
      label: {type: str, default: "a b; rm -rf /"}
      data: {type: path, default: data.csv}
    command: "python train.py --alpha {alpha} --epochs {epochs} --label {label} --data {data}"
  broken:
    parameters:
      code: {type: int, default: 3}
    command: "python fail.py {code}"
"""

TRAIN = """
import argparse, sys, quayside
parser = argparse.ArgumentParser()
for name in ("--alpha", "--epochs", "--label", "--data"):
    parser.add_argument(name)
args = parser.parse_args()
with quayside.start_run():
    for epoch in range(int(args.epochs)):
        quayside.log_metric("loss", float(args.alpha) / (epoch + 1), step=epoch)
    quayside.set_tag("label_seen", args.label)
print(f"trained {args.epochs} epochs on {args.data}; python {sys.prefix}")
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "churn"
    root.mkdir()
    (root / "quayside.yaml").write_text(PROJECT)
    (root / "train.py").write_text(TRAIN)
    (root / "fail.py").write_text("import sys\nprint('about to fail')\nsys.exit(int(sys.argv[1]))\n")
    return root


def quayside_run(target, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = clean_env(**target.env())
    return subprocess.run(
        [QUAYSIDE, "run", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=300
    )


def run_id_from(result: subprocess.CompletedProcess[str]) -> str:
    return result.stderr.split("run ", 1)[1].split()[0]


@pytest.mark.parametrize("target_name", ["local_sqlite", "rest_postgresql"])
def test_a_project_run_records_params_status_exit_code_and_the_scripts_own_logging(
    request: pytest.FixtureRequest, target_name: str, project: Path
):
    target = request.getfixturevalue(target_name)
    result = quayside_run(
        target, str(project), "-e", "main", "-P", "epochs=3", "-P", "alpha=0.9", cwd=project
    )
    assert result.returncode == 0, result.stderr
    assert "trained 3 epochs on" in result.stdout  # the subprocess's output streams through
    run = target.client().get_run(run_id_from(result))
    assert run.status is RunStatus.FINISHED and run.exit_code == 0
    assert run.params == {
        "alpha": "0.9",
        "data": str(project / "data.csv"),
        "epochs": "3",
        "label": "a b; rm -rf /",
    }
    assert run.latest_metrics == {"loss": pytest.approx(0.3)}
    assert run.tags["label_seen"] == "a b; rm -rf /"  # one argument, never a shell command
    assert run.tags["quayside.project"] == "churn" and run.tags["quayside.entry_point"] == "main"


def test_a_failing_entry_point_is_a_failed_run_and_a_non_zero_exit(local_sqlite, project: Path):
    result = quayside_run(local_sqlite, str(project), "-e", "broken")
    assert result.returncode == 3
    assert "about to fail" in result.stdout
    assert "error: entry point 'broken' exited with code 3" in result.stderr
    run = local_sqlite.client().get_run(run_id_from(result))
    assert run.status is RunStatus.FAILED and run.exit_code == 3


@pytest.mark.parametrize(
    ("entry", "assignments", "message"),
    [
        ("main", ["epochs=three"], "parameter 'epochs' must be an int, got 'three'"),
        (
            "main",
            ["epochs=1", "beta=2"],
            "entry point 'main' has no parameter 'beta' (known: alpha, data, epochs, label)",
        ),
        ("main", [], "entry point 'main' needs parameter 'epochs' (int): pass -P epochs=..."),
        ("main", ["epochs"], "parameter 'epochs' must look like key=value"),
        ("nope", [], "project 'churn' has no entry point 'nope' (it has: broken, main)"),
    ],
)
def test_parameters_are_checked_against_their_declared_types(project: Path, entry, assignments, message):
    with pytest.raises((UsageError, NotFoundError)) as caught:
        load_project(project).entry_point(entry).resolve_parameters(parse_assignments(assignments), project)
    assert caught.value.message == message


def test_a_bad_parameter_is_one_error_line_exit_1_and_no_run(local_sqlite, project: Path):
    before = len(local_sqlite.client().search_runs(None, max_results=10_000))
    result = quayside_run(local_sqlite, str(project), "-P", "epochs=three")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == ["error: parameter 'epochs' must be an int, got 'three'"]
    assert len(local_sqlite.client().search_runs(None, max_results=10_000)) == before


def test_the_venv_environment_runs_in_a_fresh_interpreter(local_sqlite, tmp_path: Path):
    root = tmp_path / "isolated"
    root.mkdir()
    (root / "quayside.yaml").write_text(
        textwrap.dedent(
            """
            name: isolated
            entry_points:
              main:
                command: "python -c 'import sys; print(sys.prefix)'"
            """
        )
    )
    result = quayside_run(local_sqlite, str(root), "--env", "venv")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() != sys.prefix
    assert str(local_sqlite.settings.home / "envs") in result.stdout


def test_a_project_file_with_mistakes_is_refused_with_the_reason(tmp_path: Path):
    with pytest.raises(NotFoundError, match=r"quayside\.yaml is missing"):
        load_project(tmp_path)
    (tmp_path / "quayside.yaml").write_text("name: x\nentry_points:\n  main:\n    command: 'python {y}'\n")
    with pytest.raises(MalformedInputError, match=r"uses \{y\}, which is not a declared parameter"):
        load_project(tmp_path)
    (tmp_path / "quayside.yaml").write_text(
        "entry_points:\n  main:\n    parameters: {n: {type: complex}}\n    command: 'python {n}'\n"
    )
    with pytest.raises(MalformedInputError, match="has type 'complex'; use one of int, float, str, path"):
        load_project(tmp_path)
    (tmp_path / "quayside.yaml").write_text(
        "entry_points:\n  main:\n    parameters: {n: {type: int, default: x}}\n    command: 'python {n}'\n"
    )
    with pytest.raises((MalformedInputError, UsageError), match="parameter 'n' must be an int"):
        load_project(tmp_path)
