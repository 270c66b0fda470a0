"""The tracking commands as a user runs them: `quayside runs ...`, `quayside experiments ...`."""

from __future__ import annotations

import json
import subprocess

import pytest

from tests.db.fixtures import QUAYSIDE, clean_env


@pytest.fixture(scope="module")
def two_runs(rest_sqlite):
    """Two finished runs in experiment 'cli' that share one param and differ in another."""
    client = rest_sqlite.client()
    ids = []
    for model, accuracy in (("rf", 0.91), ("gbm", 0.95)):
        run = client.create_run("cli", run_name=model, tags={"team": "growth"})
        client.log_params(run.id, {"model": model, "seed": 0})
        client.log_metrics(run.id, {"accuracy": accuracy, "loss": 0.2})
        client.set_terminated(run.id)
        ids.append(run.id)
    return ids


def quayside(target, *args: str) -> subprocess.CompletedProcess[str]:
    env = clean_env(**target.env(), COLUMNS="200")
    return subprocess.run([QUAYSIDE, *args], env=env, capture_output=True, text=True, timeout=120)


def test_runs_search_filters_orders_and_prints_json(rest_sqlite, two_runs):
    result = quayside(
        rest_sqlite, "runs", "search", "-x", "cli", "--filter", "metrics.accuracy > 0.9 and tags.team = 'growth'",
        "--order-by", "metrics.accuracy desc", "--max", "50", "--json",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert [r["name"] for r in json.loads(result.stdout)] == ["gbm", "rf"]

    table = quayside(rest_sqlite, "runs", "search", "-x", "cli", "--filter", "params.model = 'rf'")
    assert table.returncode == 0
    assert two_runs[0] in table.stdout and two_runs[1] not in table.stdout
    assert "metrics.accuracy" in table.stdout and "0.91" in table.stdout


def test_runs_compare_puts_runs_side_by_side_and_counts_differences(rest_sqlite, two_runs):
    result = quayside(rest_sqlite, "runs", "compare", *two_runs)
    assert result.returncode == 0, result.stderr
    for expected in ("params.model", "rf", "gbm", "metrics.accuracy", "0.91", "0.95", "params.seed"):
        assert expected in result.stdout, expected
    assert "2 of 4 params and metrics differ (highlighted)" in result.stdout


def test_runs_show_and_experiments_list(rest_sqlite, two_runs):
    shown = quayside(rest_sqlite, "runs", "show", two_runs[0])
    assert shown.returncode == 0, shown.stderr
    assert "FINISHED" in shown.stdout and "accuracy" in shown.stdout and "growth" in shown.stdout
    listed = quayside(rest_sqlite, "experiments", "list", "--json")
    assert "cli" in [e["name"] for e in json.loads(listed.stdout)]


def test_a_bad_filter_is_one_error_line_naming_the_column(rest_sqlite):
    result = quayside(rest_sqlite, "runs", "search", "--filter", "params.x = 'a' or 1=1")
    assert result.returncode == 1
    assert result.stderr.strip().splitlines() == [
        "error: invalid filter at column 19: expected a column like metrics.<key>, params.<key>, tags.<key> "
        "or a run attribute (status, name, start_time, ...), got '1'"
    ]


def test_an_unknown_run_and_an_unreachable_server_are_one_line_errors(rest_sqlite, local_sqlite):
    missing = quayside(local_sqlite, "runs", "show", "0" * 32)
    assert missing.returncode == 1
    assert missing.stderr.strip() == f"error: no run with id '{'0' * 32}'"
    env = clean_env(QUAYSIDE_TRACKING_URI="http://127.0.0.1:9")
    down = subprocess.run(
        [QUAYSIDE, "experiments", "list"], env=env, capture_output=True, text=True, timeout=60
    )
    assert down.returncode == 1
    assert down.stderr.startswith("error: cannot reach the tracking server at http://127.0.0.1:9")
    assert "Traceback" not in down.stderr


def test_usage_errors_exit_2(local_sqlite):
    assert quayside(local_sqlite, "runs", "compare").returncode == 2
    assert quayside(local_sqlite, "runs", "search", "--max", "0").returncode == 2
    assert quayside(local_sqlite, "server", "--port", "99999").returncode == 2
