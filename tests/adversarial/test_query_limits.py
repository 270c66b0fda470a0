"""Hostile queries never become SQL, a stack overflow or a 5xx: filters are bounded, pages and ids validated.

Each table of hostile values runs through every path that takes it: Quayside's REST API,
the MLflow adapter, the web UI's runs page, the CLI and the Python client (over REST and
over a local store), on a real server on SQLite; the filter limits also on PostgreSQL,
where a filter at every limit must run and one past any limit must be the 400.
"""

from __future__ import annotations

import html
import urllib.parse
import uuid
from http.client import HTTPConnection
from pathlib import Path
from typing import Any

import httpx
import pytest

from quayside.cli.app import main as quayside_main
from quayside.config import Settings
from quayside.errors import FilterError, UsageError
from quayside.tracking import search
from quayside.tracking.client import Client
from quayside.tracking.entities import Metric
from quayside.tracking.limits import MAX_EXPERIMENT_ID, MAX_OFFSET, MAX_RUNS_PER_PAGE, MAX_SEARCH_EXPERIMENTS
from tests.db import fixtures
from tests.db.fixtures import Server

sqlite_server = fixtures.sqlite_server
postgresql_server = fixtures.postgresql_server
postgres_database_url = fixtures.postgres_database_url

DEPTH, TERMS, LENGTH = search.MAX_FILTER_DEPTH, search.MAX_FILTER_TERMS, search.MAX_FILTER_LENGTH
TRACKING, MLFLOW, REGISTRY = "/api/tracking", "/api/2.0/mlflow", "/api/registry"
TIMEOUT_S = 60  # a hang guard only


@pytest.fixture(scope="module")
def http(sqlite_server: Server) -> httpx.Client:
    with httpx.Client(base_url=sqlite_server.url, timeout=TIMEOUT_S) as client:
        yield client


def _seed(server_url: str, home: Path) -> tuple[int, list[str]]:
    """An experiment of three runs holding the columns the filters name (so conditions are evaluated)."""
    client = Client(settings=Settings(home=home, tracking_uri=server_url))
    experiment = client.create_experiment(f"limits-{uuid.uuid4().hex[:8]}")
    runs = []
    for number, value in enumerate(["1' OR 1=1 --", "'; DROP TABLE runs; --", "2"]):
        run = client.create_run(experiment.name, run_name=f"r{number}", tags={"t": str(number)})
        client.log_batch(
            run.id, [Metric("m", float(number), 0), Metric("o0", 1.0, 0)], {"x": value, "p": "a"}
        )
        runs.append(run.id)
    return experiment.id, runs


@pytest.fixture(scope="module")
def seeded(sqlite_server: Server, tmp_path_factory: pytest.TempPathFactory) -> tuple[int, list[str]]:
    return _seed(sqlite_server.url, tmp_path_factory.mktemp("limits-client"))


# --- hostile filters, through every path ------------------------------------------------------

HOSTILE_FILTERS = [
    pytest.param("(" * 5000 + "status = 'X'" + ")" * 5000, f"the limit is {LENGTH}", id="5000-parentheses"),
    pytest.param("not " * 5000 + "status = 'X'", f"the limit is {LENGTH}", id="5000-nots"),
    pytest.param(" or ".join(["params.x = 'a'"] * 1500), f"the limit is {LENGTH}", id="1500-term-or"),
    pytest.param("params.x = '" + "a" * 100_000 + "'", f"the limit is {LENGTH}", id="100-KB"),
    pytest.param(
        "(" * (DEPTH + 1) + "status = 'X'" + ")" * (DEPTH + 1),
        f"nest more than {DEPTH} deep; the limit is {DEPTH}",
        id="parentheses-one-past-the-depth-limit",
    ),
    pytest.param(
        "not " * (DEPTH + 1) + "status = 'X'",
        f"nest more than {DEPTH} deep",
        id="nots-one-past-the-depth-limit",
    ),
    pytest.param(
        " or ".join(["id = '1'"] * (TERMS + 1)),
        f"more than {TERMS} comparisons; the limit is {TERMS}",
        id="comparisons-one-past-the-limit",
    ),
    pytest.param("params.x = 'abc", "unterminated string", id="unterminated-string"),
    pytest.param('tags."team = 1', "unterminated string", id="unterminated-quoted-key"),
    pytest.param("params.x = 'a\x00b'", "'\\x00' is not allowed", id="NUL"),
    pytest.param("start_time > " + "9" * 5000, "out of range", id="5000-digit-integer"),
    pytest.param("start_time > 99999999999999999999", "out of range", id="integer-past-64-bits"),
    pytest.param("params.x ≠ 'a'", "column 10: unexpected", id="unicode-operator"),
    pytest.param("params.x = '1' OR 1=1 --", "unexpected '--'", id="sql-or-1-equals-1"),
    pytest.param("params.x = ''; DROP TABLE runs; --'", "unexpected ';", id="sql-drop-table"),
    pytest.param("status = 'X' UNION SELECT id FROM runs", "invalid filter at column 14", id="sql-union"),
    pytest.param("metrics.m > 1 --", "unexpected '--'", id="sql-comment"),
]


def _ui_message(response: httpx.Response) -> str:
    return html.unescape(response.text)


def _get_page(server: Server, path: str, query: dict[str, str]) -> tuple[int, str]:
    """A UI page by the standard library's client, which (unlike httpx) sends a URL of any length."""
    connection = HTTPConnection("127.0.0.1", server.port, timeout=TIMEOUT_S)
    try:
        connection.request("GET", f"{path}?{urllib.parse.urlencode(query)}")
        response = connection.getresponse()
        return response.status, html.unescape(response.read().decode())
    finally:
        connection.close()


@pytest.mark.parametrize(("source", "message"), HOSTILE_FILTERS)
def test_a_hostile_filter_is_a_400_naming_the_problem_on_quaysides_api(http, seeded, source, message):
    experiment_id, _ = seeded
    response = http.post(
        f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id], "filter": source}
    )
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_filter" and message in error["message"]


@pytest.mark.parametrize(("source", "message"), HOSTILE_FILTERS)
def test_a_hostile_filter_is_mlflows_invalid_parameter_value_on_the_adapter(http, seeded, source, message):
    experiment_id, _ = seeded
    body = {"experiment_ids": [str(experiment_id)], "filter": source}
    response = http.post(f"{MLFLOW}/runs/search", json=body)
    assert response.status_code == 400, response.text
    assert response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"]


@pytest.mark.parametrize(("source", "message"), HOSTILE_FILTERS)
def test_a_hostile_filter_is_a_400_page_on_the_web_ui(sqlite_server, seeded, source, message):
    experiment_id, _ = seeded
    status, page = _get_page(sqlite_server, f"/experiments/{experiment_id}", {"filter": source})
    assert status == 400, page[:500]
    # A URL past the HTTP parser's limit (about 64 KB) is refused before it reaches the page.
    assert message in page or page == "Invalid HTTP request received."


@pytest.mark.parametrize(("source", "message"), HOSTILE_FILTERS)
def test_a_hostile_filter_is_a_filter_error_in_python_over_rest_and_locally(
    sqlite_server, tmp_path, seeded, source, message
):
    over_rest = Client(settings=Settings(home=tmp_path / "rest", tracking_uri=sqlite_server.url))
    local = Client(settings=Settings(home=tmp_path / "local"))
    for client in (over_rest, local):
        with pytest.raises(FilterError) as raised:
            client.search_runs(None, source)
        assert message in raised.value.message


@pytest.fixture
def cli(sqlite_server, monkeypatch, capsys):
    """``quayside ARGS`` through its real entry point against the SQLite server: (exit code, stdout, stderr)."""
    for key in [k for k in __import__("os").environ if k.startswith("QUAYSIDE_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("QUAYSIDE_TRACKING_URI", sqlite_server.url)

    def invoke(*args: str) -> tuple[int, str, str]:
        capsys.readouterr()
        with pytest.raises(SystemExit) as exited:
            quayside_main(list(args))
            raise SystemExit(0)
        captured = capsys.readouterr()
        return int(exited.value.code or 0), captured.out, captured.err

    return invoke


@pytest.mark.parametrize(("source", "message"), HOSTILE_FILTERS)
def test_a_hostile_filter_is_one_error_line_from_the_cli(cli, seeded, source, message):
    code, out, err = cli("runs", "search", "--filter", source)
    assert code == 1 and out == ""
    lines = err.strip().splitlines()
    assert lines[0].startswith("error: invalid filter") and message.split("'")[0] in err
    assert "Traceback" not in err


def test_the_installed_cli_refuses_a_deep_filter_with_one_line(sqlite_server, seeded):
    import subprocess

    env = fixtures.clean_env(QUAYSIDE_TRACKING_URI=sqlite_server.url, COLUMNS="300")
    source = "not " * (DEPTH + 1) + "status = 'X'"
    done = subprocess.run(
        [fixtures.QUAYSIDE, "runs", "search", "--filter", source],
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert done.returncode == 1 and "Traceback" not in done.stderr
    assert done.stderr.strip().startswith("error: invalid filter") and f"the limit is {DEPTH}" in done.stderr


# --- SQL in values stays a value ---------------------------------------------------------------


def _quote(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


@pytest.mark.parametrize("value", ["1' OR 1=1 --", "'; DROP TABLE runs; --", "2"])
def test_sql_looking_values_are_compared_as_literals_and_the_tables_survive(http, seeded, value):
    experiment_id, run_ids = seeded
    source = f"params.x = {_quote(value)}"
    quayside = http.post(
        f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id], "filter": source}
    )
    mlflow = http.post(
        f"{MLFLOW}/runs/search", json={"experiment_ids": [str(experiment_id)], "filter": source}
    )
    assert [r["params"]["x"] for r in quayside.json()["runs"]] == [value]
    assert [r["info"]["run_id"] for r in mlflow.json()["runs"]] == [
        run_ids[["1' OR 1=1 --", "'; DROP TABLE runs; --", "2"].index(value)]
    ]
    # Nothing was dropped or rewritten: every run is still there, with its params.
    everything = http.post(f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id]}).json()["runs"]
    assert sorted(r["id"] for r in everything) == sorted(run_ids)


@pytest.mark.parametrize(
    "source",
    [
        "params.\"x' OR '1'='1\" = 'a'",
        'tags."t; DROP TABLE tags; --" is not null',
        "params.x like '%'' OR ''1''=''1'",
        "params.x in ('1'' OR 1=1', ''';--')",
    ],
)
def test_sql_looking_keys_and_patterns_match_nothing_they_do_not_name(http, seeded, source):
    experiment_id, _run_ids = seeded
    response = http.post(
        f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id], "filter": source}
    )
    assert response.status_code == 200 and response.json()["runs"] == []
    assert (
        len(http.post(f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id]}).json()["runs"])
        == 3
    )


@pytest.mark.parametrize(
    ("order_by", "message"),
    [
        pytest.param(["metrics.m desc; DROP TABLE runs"], "unexpected '; DROP", id="sql-after-a-key"),
        pytest.param(
            ["metrics.m desc"] * (search.MAX_ORDER_KEYS + 1), "the limit is 20", id="keys-past-the-limit"
        ),
        pytest.param(["metrics." + "m" * (LENGTH + 1)], "longer than", id="longer-than-the-limit"),
        pytest.param(["params.x\x00 desc"], "not allowed", id="NUL"),
    ],
)
def test_a_hostile_order_by_is_a_400_on_both_apis(http, seeded, order_by, message):
    experiment_id, _ = seeded
    quayside = http.post(
        f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id], "order_by": order_by}
    )
    mlflow = http.post(
        f"{MLFLOW}/runs/search", json={"experiment_ids": [str(experiment_id)], "order_by": order_by}
    )
    assert quayside.status_code == 400 and message in quayside.json()["error"]["message"]
    assert mlflow.status_code == 400 and mlflow.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in mlflow.json()["message"]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        pytest.param("name = '" + "a" * 100_000 + "'", f"the limit is {LENGTH}", id="100-KB"),
        pytest.param("name = 'a\x00'", "not allowed", id="NUL"),
        pytest.param("(" * 5000 + "name = 'a'" + ")" * 5000, f"the limit is {LENGTH}", id="5000-parentheses"),
        pytest.param("name = 'a' OR 1=1 --", "is not supported", id="sql-or-1-equals-1"),
    ],
)
def test_a_hostile_experiment_filter_is_a_400_on_the_adapter(http, source, message):
    response = http.post(f"{MLFLOW}/experiments/search", json={"filter": source})
    assert response.status_code == 400 and response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
    assert message in response.json()["message"] and len(response.json()["message"]) < 1000


def test_an_experiment_like_pattern_cannot_backtrack(http):
    # As a regular expression ('.*a.*a...') this pattern takes exponential time against a long name.
    name = "a" * 200
    http.post(f"{MLFLOW}/experiments/create", json={"name": name})
    source = "name LIKE '" + "%a" * 60 + "%b'"
    response = http.post(f"{MLFLOW}/experiments/search", json={"filter": source, "max_results": 10})
    assert response.status_code == 200 and response.json()["experiments"] == []
    found = http.post(f"{MLFLOW}/experiments/search", json={"filter": "name LIKE '" + "%a" * 60 + "%'"})
    assert [e["name"] for e in found.json()["experiments"]] == [name]


# --- a filter at every limit runs; one past a limit is the 400, on SQLite and PostgreSQL --------


def _nest(prefix: str, depth: int, innermost: str) -> str:
    """``prefix (`` ``depth`` times around ``innermost``: ``prefix`` ending in ``not`` adds a level."""
    return (prefix + " (") * depth + innermost + ")" * depth


METRIC, PARAM_NOT_IN = "metrics.m > 0", "params.p not in ('b', 'c')"
AT_THE_LIMITS = {
    "100 metric comparisons or-ed": " or ".join(f"metrics.m{k} > {k}" for k in range(TERMS)),
    "100 param comparisons and-ed": " and ".join(f"params.p{k} != 'v'" for k in range(TERMS)),
    # 'a or b and (' keeps five entries per level on SQLite's parser stack, the most of any shape.
    "deepest 'a or b and (...)'": _nest(f"{METRIC} or {METRIC} and", DEPTH, METRIC),
    "deepest 'a or b and not (...)'": _nest(f"{METRIC} or {PARAM_NOT_IN} and not", DEPTH // 2, METRIC),
    "deepest 'not (a or ...)'": "".join(f"not ({METRIC} or " for _ in range(DEPTH // 2))
    + METRIC
    + ")" * (DEPTH // 2),
    "deepest nots": "not " * DEPTH + PARAM_NOT_IN,
    "deepest parentheses": "(" * DEPTH + METRIC + ")" * DEPTH,
    "100 comparisons, the most at the deepest level": _nest(
        "status = 'X' or", DEPTH, " and ".join([METRIC] * (TERMS - DEPTH))
    ),
    "10 KB 'in' list of numbers": "metrics.m in (" + ",".join(["1"] * ((LENGTH - 15) // 2)) + ")",
    "10 KB 'in' list of strings": "params.p in (" + ",".join(["'a'"] * ((LENGTH - 15) // 4)) + ")",
}
PAST_THE_LIMITS = {
    "101 comparisons": (
        " or ".join(f"metrics.m{k} > {k}" for k in range(TERMS + 1)),
        f"the limit is {TERMS}",
    ),
    "one level too deep": (_nest(f"{METRIC} or {METRIC} and", DEPTH + 1, METRIC), f"the limit is {DEPTH}"),
    "one character too long": (
        "metrics.m in (" + ",".join(["1"] * ((LENGTH - 15) // 2)) + ")" + " " * LENGTH,
        f"the limit is {LENGTH}",
    ),
}
MAX_ORDER = [f"metrics.o{k} desc" for k in range(search.MAX_ORDER_KEYS)]


@pytest.fixture(scope="module", params=["sqlite_server", "postgresql_server"])
def limits_server(request: pytest.FixtureRequest, tmp_path_factory) -> tuple[Server, int]:
    server = request.getfixturevalue(request.param)
    experiment_id, _ = _seed(server.url, tmp_path_factory.mktemp(f"limits-{request.param}"))
    return server, experiment_id


def test_the_filters_at_the_limits_are_within_them():
    for name, source in AT_THE_LIMITS.items():
        assert len(source) <= LENGTH, name
        assert search.parse_filter(source) is not None, name


@pytest.mark.parametrize("name", list(AT_THE_LIMITS))
def test_a_filter_at_the_limits_runs_on_both_databases(limits_server, name):
    server, experiment_id = limits_server
    body = {"experiment_ids": [experiment_id], "filter": AT_THE_LIMITS[name], "order_by": MAX_ORDER}
    response = httpx.post(f"{server.url}{TRACKING}/runs/search", json=body, timeout=TIMEOUT_S)
    assert response.status_code == 200, response.text
    mlflow = httpx.post(
        f"{server.url}{MLFLOW}/runs/search",
        json=body | {"experiment_ids": [str(experiment_id)]},
        timeout=TIMEOUT_S,
    )
    assert mlflow.status_code == 200, mlflow.text
    assert len(mlflow.json()["runs"]) == len(response.json()["runs"])


@pytest.mark.parametrize("name", list(PAST_THE_LIMITS))
def test_a_filter_past_a_limit_is_the_400_on_both_databases(limits_server, name):
    server, experiment_id = limits_server
    source, message = PAST_THE_LIMITS[name]
    body = {"experiment_ids": [experiment_id], "filter": source}
    response = httpx.post(f"{server.url}{TRACKING}/runs/search", json=body, timeout=TIMEOUT_S)
    assert response.status_code == 400 and response.json()["error"]["code"] == "invalid_filter"
    assert message in response.json()["error"]["message"]


def test_an_order_by_one_key_past_the_limit_is_the_400(limits_server):
    server, experiment_id = limits_server
    body = {"experiment_ids": [experiment_id], "order_by": [*MAX_ORDER, "metrics.m asc"]}
    response = httpx.post(f"{server.url}{TRACKING}/runs/search", json=body, timeout=TIMEOUT_S)
    assert response.status_code == 400
    assert f"the limit is {search.MAX_ORDER_KEYS}" in response.json()["error"]["message"]


# --- hostile paging values and ids --------------------------------------------------------------

ACCEPTED = 200
REST_SEARCH_PAGING = [
    ("offset", 10**19, 400),
    ("offset", 2**63, 400),
    ("offset", -1, 400),
    ("offset", "abc", 400),
    ("offset", 1.5, 400),
    ("offset", 1e3, ACCEPTED),
    ("offset", MAX_OFFSET, ACCEPTED),
    ("max_results", 0, 400),
    ("max_results", -1, 400),
    ("max_results", 10**19, 400),
    ("max_results", MAX_RUNS_PER_PAGE + 1, 400),
    ("max_results", "abc", 400),
    ("max_results", 1e3, ACCEPTED),
    ("experiment_ids", [10**19], 400),
    ("experiment_ids", [MAX_EXPERIMENT_ID + 1], 400),
    ("experiment_ids", [-1], 400),
    ("experiment_ids", ["abc"], 400),
    ("experiment_ids", [1] * (MAX_SEARCH_EXPERIMENTS + 1), 400),
]


@pytest.mark.parametrize(("field", "value", "status"), REST_SEARCH_PAGING, ids=lambda v: str(v)[:20])
def test_hostile_paging_values_on_quaysides_search_are_refused_naming_the_field(
    http, seeded, field, value, status
):
    experiment_id, _ = seeded
    body: dict[str, Any] = {"experiment_ids": [experiment_id], field: value}
    response = http.post(f"{TRACKING}/runs/search", json=body)
    assert response.status_code == status, response.text
    if status != ACCEPTED:
        error = response.json()["error"]
        assert error["code"] == "invalid_request" and f"'{field}" in error["message"]


HOSTILE_IDS = [
    "29330361996384153894912",
    str(10**19),
    str(MAX_EXPERIMENT_ID + 1),
    "-1",
    "abc",
    "1e3",
    "²",
    "9" * 5000,
]


@pytest.mark.parametrize("value", HOSTILE_IDS, ids=lambda v: v[:20])
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
def test_a_hostile_experiment_id_in_a_path_is_a_400(http, method, value):
    body = {"name": "renamed"} if method == "PATCH" else None
    response = http.request(method, f"{TRACKING}/experiments/{value}", json=body)
    assert response.status_code == 400, response.text
    assert "path parameter 'experiment_id'" in response.json()["error"]["message"]


def test_the_largest_experiment_id_is_a_plain_404(http):
    response = http.get(f"{TRACKING}/experiments/{MAX_EXPERIMENT_ID}")
    assert response.status_code == 404 and response.json()["error"]["code"] == "not_found"


def test_a_hostile_experiment_id_in_a_body_is_a_400_and_nothing_is_written(http, seeded):
    experiment_id, run_ids = seeded
    response = http.post(f"{TRACKING}/runs", json={"experiment_id": 10**19})
    assert response.status_code == 400 and "experiment_id" in response.json()["error"]["message"]
    everything = http.post(f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id]}).json()["runs"]
    assert sorted(r["id"] for r in everything) == sorted(run_ids)


@pytest.fixture(scope="module")
def model_name(http) -> str:
    name = f"limits-{uuid.uuid4().hex[:8]}"
    assert http.post(f"{REGISTRY}/models", json={"name": name}).status_code == 201
    return name


HOSTILE_VERSIONS = [
    ("29330361996384153894912", 400),
    (str(2**31), 400),
    ("abc", 400),
    ("1e3", 400),
    ("²", 400),
    ("0", 400),
    ("-1", 400),
]


@pytest.mark.parametrize(("value", "status"), [*HOSTILE_VERSIONS, (str(2**31 - 1), 404)], ids=str)
@pytest.mark.parametrize("route", ["/versions/{v}", "/versions/{v}/package", "/versions/{v}/loadtests"])
def test_a_hostile_version_number_is_a_4xx_on_the_registrys_version_routes(
    http, model_name, route, value, status
):
    response = http.get(f"{REGISTRY}/models/{model_name}{route.format(v=value)}")
    assert response.status_code == status, response.text
    assert response.json()["error"]["message"]


@pytest.mark.parametrize(("value", "status"), HOSTILE_VERSIONS, ids=str)
def test_a_hostile_version_number_is_a_4xx_on_the_registrys_history(http, model_name, value, status):
    response = http.get(f"{REGISTRY}/models/{model_name}/history", params={"version": value})
    assert response.status_code == status, response.text
    assert "version" in response.json()["error"]["message"]


def test_a_hostile_alias_version_is_a_400_and_no_alias_is_set(http, model_name):
    response = http.put(f"{REGISTRY}/models/{model_name}/aliases/champion", json={"version": 10**19})
    assert response.status_code == 400 and "version" in response.json()["error"]["message"]
    assert http.get(f"{REGISTRY}/models/{model_name}/aliases/champion").status_code == 404


def test_the_registry_listing_takes_no_paging_so_hostile_values_change_nothing(http, model_name):
    hostile = {"offset": str(10**19), "max_results": "abc", "page_token": "x" * 1000}
    response = http.get(f"{REGISTRY}/models", params=hostile)
    assert response.status_code == 200
    assert model_name in [m["name"] for m in response.json()["models"]]


HOSTILE_TOKENS = [
    str(10**20),
    str(2**63),
    "-1",
    "abc",
    "eyJvZmZzZXQiOiAxMH0=",
    "²",
    " 1",
    "1" * 40,
    "0x10",
    "1e3",
]
HOSTILE_MAX_RESULTS = [0, -1, 50_001, 10**20, "abc"]
MLFLOW_SEARCHES = {
    "runs/search": {"experiment_ids": ["0"]},
    "experiments/search": {},
    "logged-models/search": {"experiment_ids": ["0"]},
}


@pytest.mark.parametrize("token", HOSTILE_TOKENS, ids=lambda v: v[:20])
@pytest.mark.parametrize("endpoint", list(MLFLOW_SEARCHES))
def test_a_hostile_page_token_is_mlflows_invalid_parameter_value(http, endpoint, token):
    response = http.post(f"{MLFLOW}/{endpoint}", json=MLFLOW_SEARCHES[endpoint] | {"page_token": token})
    assert response.status_code == 400, response.text
    assert (
        response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        and "page_token" in response.json()["message"]
    )


@pytest.mark.parametrize("max_results", HOSTILE_MAX_RESULTS, ids=str)
@pytest.mark.parametrize("endpoint", ["runs/search", "experiments/search"])
def test_a_max_results_mlflows_server_refuses_is_refused(http, endpoint, max_results):
    response = http.post(
        f"{MLFLOW}/{endpoint}", json=MLFLOW_SEARCHES[endpoint] | {"max_results": max_results}
    )
    assert response.status_code == 400, response.text
    assert (
        response.json()["error_code"] == "INVALID_PARAMETER_VALUE"
        and "max_results" in response.json()["message"]
    )


def test_mlflow_page_tokens_still_walk_every_page(http, seeded):
    experiment_id, run_ids = seeded
    seen, token = [], None
    for _ in range(5):
        body = {"experiment_ids": [str(experiment_id)], "max_results": 2} | (
            {"page_token": token} if token else {}
        )
        page = http.post(f"{MLFLOW}/runs/search", json=body).json()
        seen += [r["info"]["run_id"] for r in page.get("runs", [])]
        token = page.get("next_page_token")
        if not token:
            break
    assert sorted(seen) == sorted(run_ids)
    first = http.post(f"{MLFLOW}/experiments/search", json={"max_results": 1}).json()
    second = http.post(
        f"{MLFLOW}/experiments/search", json={"max_results": 1, "page_token": first["next_page_token"]}
    )
    assert second.status_code == 200 and second.json()["experiments"] != first["experiments"]


@pytest.mark.parametrize("value", ["29330361996384153894912", "²", "-1", "abc"], ids=lambda v: v[:20])
def test_a_hostile_mlflow_experiment_id_is_resource_does_not_exist(http, value):
    got = http.get(f"{MLFLOW}/experiments/get", params={"experiment_id": value})
    searched = http.post(f"{MLFLOW}/runs/search", json={"experiment_ids": [value]})
    for response in (got, searched):
        assert response.status_code == 404 and response.json()["error_code"] == "RESOURCE_DOES_NOT_EXIST"


def test_mlflow_search_names_at_most_so_many_experiments(http):
    response = http.post(
        f"{MLFLOW}/runs/search", json={"experiment_ids": ["0"] * (MAX_SEARCH_EXPERIMENTS + 1)}
    )
    assert response.status_code == 400 and "experiment_ids" in response.json()["message"]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ({"page": "0"}, "page numbers start at 1"),
        ({"page": "-1"}, "page numbers start at 1"),
        ({"page": "abc"}, "query parameter 'page'"),
        ({"page": "1e3"}, "query parameter 'page'"),
        ({"page": "9" * 5000}, "query parameter 'page'"),
        ({"per_page": "0"}, "runs per page must be one of"),
        ({"per_page": str(10**19)}, "runs per page must be one of"),
        ({"per_page": "abc"}, "query parameter 'per_page'"),
        ({"dir": "sideways"}, "query parameter 'dir'"),
        ({"sort": "nope"}, "column 'nope' is not metrics.<key> or params.<key>"),
        ({"sort": "metrics." + "m" * (LENGTH + 1)}, "longer than"),
        ({"sort": 'metrics.m"; DROP TABLE runs; --'}, "invalid filter"),
        ({"col": "runs; DROP TABLE runs"}, "is not metrics.<key> or params.<key>"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_hostile_query_parameters_on_the_runs_page_are_a_400_page(http, seeded, query, message):
    experiment_id, _run_ids = seeded
    response = http.get(f"/experiments/{experiment_id}", params=query)
    assert response.status_code == 400, response.text[:300]
    assert message in _ui_message(response)
    assert (
        len(http.post(f"{TRACKING}/runs/search", json={"experiment_ids": [experiment_id]}).json()["runs"])
        == 3
    )


@pytest.mark.parametrize("page", [str(MAX_OFFSET), str(10**19), "29330361996384153894912"])
def test_a_page_past_the_last_shows_the_last(http, seeded, page):
    experiment_id, _ = seeded
    response = http.get(f"/experiments/{experiment_id}", params={"page": page, "per_page": "25"})
    assert response.status_code == 200 and "r0" in response.text


@pytest.mark.parametrize("path", ["/experiments/{v}", "/models/some-model/versions/{v}"])
@pytest.mark.parametrize("value", ["29330361996384153894912", "abc", "9" * 5000], ids=lambda v: v[:20])
def test_a_hostile_id_in_a_page_path_is_a_400_page(http, path, value):
    response = http.get(path.format(v=value))
    assert response.status_code == 400 and "path parameter" in _ui_message(response)


@pytest.mark.parametrize("value", ["0", "-1", str(10**19), "abc", "1e3"])
def test_the_cli_refuses_a_hostile_max_with_a_usage_error(cli, value):
    code, _out, err = cli("runs", "search", "--max", value)
    assert code == 2 and "Traceback" not in err
    assert "--max" in err


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"offset": 10**19}, "offset must be between 0 and"),
        ({"offset": -1}, "offset must be between 0 and"),
        ({"offset": "abc"}, "offset must be a whole number"),
        ({"offset": 1.5}, "offset must be a whole number"),
        ({"max_results": 0}, "max results must be between 1 and"),
        ({"max_results": 10**19}, "max results must be between 1 and"),
        ({"max_results": True}, "max results must be a whole number"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_hostile_paging_values_are_a_usage_error_in_python_on_both_backends(
    sqlite_server, tmp_path, kwargs, message
):
    over_rest = Client(settings=Settings(home=tmp_path / "rest", tracking_uri=sqlite_server.url))
    local = Client(settings=Settings(home=tmp_path / "local"))
    for client in (over_rest, local):
        with pytest.raises(UsageError, match=message):
            client.search_runs(None, **kwargs)


@pytest.mark.parametrize("value", [10**19, MAX_EXPERIMENT_ID + 1, -1])
def test_a_hostile_experiment_id_is_a_usage_error_in_python_on_both_backends(sqlite_server, tmp_path, value):
    over_rest = Client(settings=Settings(home=tmp_path / "rest", tracking_uri=sqlite_server.url))
    local = Client(settings=Settings(home=tmp_path / "local"))
    for client in (over_rest, local):
        with pytest.raises(UsageError, match="experiment id"):
            client.get_experiment(value)
    with pytest.raises(UsageError, match="experiment id"):
        local.backend.search_runs([value])
