"""The filter language, by property: any text parses or is a FilterError, and what parses runs in the database.

Three kinds of input: arbitrary text; token soup (the grammar's own words, operators,
columns and values in any order, so the parser is pushed down its real paths); and
filters built from the grammar, up to the depth and term limits, which must also
execute on a real SQLite store (no 5xx, no "database unavailable", no "query too large").
"""

from __future__ import annotations

import string
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from quayside.errors import FilterError
from quayside.tracking import search
from quayside.tracking.entities import Metric
from quayside.tracking.store import TrackingStore

FAST = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
IN_DATABASE = settings(
    max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)

# --- the grammar's pieces -----------------------------------------------------------------

keys = st.sampled_from(["m", "acc", "val loss", "a.b", "x'y", 'q"t', "ключ", "%_", ""])
prefixes = st.sampled_from(["metrics", "params", "tags", "metric", "param", "tag", "attributes", "run"])
attributes = st.sampled_from([*search.ATTRIBUTES, "colour", "STATUS"])
string_values = st.text(alphabet=string.printable + "é'\"\\%_", max_size=12)
numbers = st.one_of(
    st.integers(min_value=-(2**70), max_value=2**70),
    st.floats(allow_nan=False),
    st.sampled_from(["1e999", "-0", ".5", "9" * 30, "+3", "1.", "0x10"]),
)


def _quoted(value: str, quote: str) -> str:
    if quote == "'":
        return "'" + value.replace("\\", "\\\\").replace("'", "''") + "'"
    if quote == '"':
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "`" + value.replace("`", "") + "`"


quoted_strings = st.builds(_quoted, string_values, st.sampled_from(["'", '"', "`"]))
values = st.one_of(quoted_strings, numbers.map(str))


def _column(prefix: str, key: str) -> str:
    plain = key and all(c.isalnum() or c in "_-./" for c in key) and key[0].isalpha()
    return f"{prefix}.{key}" if plain else f"{prefix}.{_quoted(key, chr(34))}"


columns = st.one_of(st.builds(_column, prefixes, keys), attributes)
operators = st.sampled_from(["=", "!=", "<>", "==", "<", "<=", ">", ">=", "like", "ILIKE"])
words = st.sampled_from(["and", "or", "not", "in", "is", "null", "(", ")", ",", "asc", "desc", "AND", "Not"])
tokens = st.one_of(
    columns, operators, values, words, st.sampled_from(["'", '"', "`", ";", "--", "\\", "\x00"])
)
token_soup = st.lists(tokens, max_size=25).map(" ".join)


# --- valid filters: numbers where a column holds numbers, strings where it holds strings ---

NUMBER_COLUMNS = ["metrics.m", "metrics.acc", 'metrics."val loss"', "start_time", "end_time", "exit_code"]
STRING_COLUMNS = ["params.p", 'params."x y"', "tags.t", "tags.quayside.git.dirty", "status", "name", "run_id"]
safe_strings = st.text(alphabet=string.ascii_letters + string.digits + " '%_-", max_size=8).map(
    lambda s: _quoted(s, "'")
)
safe_numbers = st.one_of(
    st.integers(min_value=-(2**63), max_value=2**63 - 1).map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


def _comparisons() -> st.SearchStrategy[str]:
    number_column = st.sampled_from(NUMBER_COLUMNS)
    string_column = st.sampled_from(STRING_COLUMNS)
    return st.one_of(
        st.builds(
            "{} {} {}".format, number_column, st.sampled_from(["=", "!=", "<", "<=", ">", ">="]), safe_numbers
        ),
        st.builds(
            "{} {} {}".format, string_column, st.sampled_from(["=", "!=", "like", "ilike"]), safe_strings
        ),
        st.builds(
            "{} {}in ({})".format,
            number_column,
            st.sampled_from(["", "not "]),
            st.lists(safe_numbers, min_size=1, max_size=5).map(", ".join),
        ),
        st.builds(
            "{} {}in ({})".format,
            string_column,
            st.sampled_from(["", "not "]),
            st.lists(safe_strings, min_size=1, max_size=5).map(", ".join),
        ),
        st.builds(
            "{} is {}null".format, st.one_of(number_column, string_column), st.sampled_from(["", "not "])
        ),
    )


def _combine(children: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    return st.one_of(
        st.builds("({})".format, children),
        st.builds("not {}".format, children),
        st.builds(
            lambda parts, op: f" {op} ".join(parts),
            st.lists(children, min_size=2, max_size=4),
            st.sampled_from(["and", "or"]),
        ),
    )


valid_filters = st.recursive(_comparisons(), _combine, max_leaves=40)
order_keys = st.lists(
    st.builds(
        "{} {}".format, st.sampled_from(NUMBER_COLUMNS + STRING_COLUMNS), st.sampled_from(["asc", "desc", ""])
    ),
    max_size=search.MAX_ORDER_KEYS,
)


def _within_limits(source: str) -> bool:
    try:
        search.parse_filter(source)
    except FilterError:
        return False
    return True


# --- properties ---------------------------------------------------------------------------


def _parses_or_refuses(source: str) -> None:
    try:
        search.compile_filter(search.parse_filter(source))
    except FilterError as e:
        assert e.message.startswith("invalid filter")


@FAST
@given(st.text(max_size=400))
def test_any_text_parses_or_is_a_filter_error(source: str):
    _parses_or_refuses(source)


@FAST
@given(token_soup)
def test_any_sequence_of_the_grammars_tokens_parses_or_is_a_filter_error(source: str):
    _parses_or_refuses(source)


@FAST
@given(st.one_of(st.text(max_size=200), token_soup, st.lists(token_soup, max_size=5)))
def test_any_order_by_parses_or_is_a_filter_error(clauses: str | list[str]):
    try:
        search.compile_order_by(search.parse_order_by(clauses))
    except FilterError as e:
        assert e.message.startswith(("invalid order-by", "invalid filter"))


@FAST
@given(
    st.integers(min_value=0, max_value=3 * search.MAX_FILTER_DEPTH), st.sampled_from(["(", "not ", "not ("])
)
def test_nesting_past_the_limit_is_refused_before_the_stack_is(depth: int, opener: str):
    source = opener * depth + "status = 'X'" + ")" * (depth * opener.count("("))
    nesting = depth * (opener.count("(") + opener.count("not"))
    if nesting <= search.MAX_FILTER_DEPTH:
        assert search.parse_filter(source) is not None
    else:
        with pytest.raises(FilterError, match=f"the limit is {search.MAX_FILTER_DEPTH}"):
            search.parse_filter(source)


@pytest.fixture(scope="module")
def store(tmp_path_factory: pytest.TempPathFactory) -> tuple[TrackingStore, int]:
    """A SQLite store with an experiment of three runs that hold every column the filters name."""
    path: Path = tmp_path_factory.mktemp("search-properties") / "quayside.db"
    store = TrackingStore(f"sqlite:///{path}", path.parent / "artifacts")
    experiment = store.create_experiment(f"properties-{uuid.uuid4().hex[:8]}")
    for number in range(3):
        run = store.create_run(experiment.id, f"r{number}", {"t": str(number), "quayside.git.dirty": "no"})
        metrics = [Metric("m", number / 2, 0), Metric("acc", 0.5, 1), Metric("val loss", float(number), 0)]
        store.log_batch(run.id, metrics, {"p": f"v{number}", "x y": "q"})
        store.update_run(run.id, status="FINISHED", exit_code=number)
    return store, experiment.id


@IN_DATABASE
@given(valid_filters.filter(_within_limits), order_keys)
def test_generated_valid_filters_execute_on_sqlite(
    store: tuple[TrackingStore, int], source: str, order: list[str]
):
    tracking, experiment_id = store
    runs = tracking.search_runs([experiment_id], source, order, max_results=10)
    assert len(runs) <= 3
    assert tracking.count_runs([experiment_id], source) == len(runs)


@st.composite
def deepest_filters(draw: st.DrawFn) -> str:
    """A filter nested exactly :data:`~quayside.tracking.search.MAX_FILTER_DEPTH` deep, comparisons at each level.

    The shapes that cost SQLite's parser most are among them (``a or b and (...)`` keeps
    five entries on its stack per level), so the limit is tested where it binds.
    """
    comparison = _comparisons()
    connective = st.sampled_from([" and ", " or "])
    source, closers = "", []
    for _ in range(search.MAX_FILTER_DEPTH):
        for _ in range(draw(st.integers(min_value=0, max_value=2))):
            source += draw(comparison) + draw(connective)
        opener = draw(st.sampled_from(["(", "not "]))
        source += opener
        after = draw(connective) + draw(comparison) if draw(st.booleans()) else ""
        closers.append(")" + after if opener == "(" else "")
    return source + draw(comparison) + "".join(reversed(closers))


@IN_DATABASE
@given(deepest_filters())
def test_filters_at_the_depth_limit_execute_on_sqlite(store: tuple[TrackingStore, int], source: str):
    tracking, experiment_id = store
    assert search.parse_filter(source) is not None
    assert len(tracking.search_runs([experiment_id], source, max_results=10)) <= 3
