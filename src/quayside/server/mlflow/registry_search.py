"""MLflow's model-registry search language: filters and ``order_by`` clauses, parsed here and applied in Python.

    name = 'churn'            name LIKE '%churn%'          name ILIKE 'Churn%'
    run_id = '4f0c...'        run_id IN ('4f0c...', 'a1')  source_path = 'runs:/4f0c.../model'
    tags.team = 'growth'      tags.`my key` LIKE 'a%'      version_number >= 2
    name = 'churn' AND tags.team != 'growth'

As in MLflow, a registry filter is comparisons joined by ``AND`` (there is no ``OR``);
strings are quoted, tag keys may be quoted with backticks or double quotes, and a
version without a tag fails every comparison on it (``!=`` included), except MLflow's
prompt marker (:data:`ABSENT_TAGS`). ``LIKE`` is SQL's
(``%``, ``_``), case-sensitive; ``ILIKE`` ignores case. Registered models are searched
by ``name`` and tags; model versions by ``name``, ``run_id``, ``source_path``,
``version_number`` and tags. Every error is a 400 (MLflow's ``INVALID_PARAMETER_VALUE``)
that names the term it is about.

Registries are small next to run tables, so the store lists and this module filters and
sorts; the tokenizer and its limits are the run filter's (:mod:`quayside.tracking.search`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from quayside.errors import FilterError
from quayside.tracking.experiment_filter import like_matcher
from quayside.tracking.search import MAX_FILTER_TERMS, MAX_ORDER_KEYS, Token, check_source, tokenize

T = TypeVar("T")

Value = str | int | tuple[str, ...]

STRING_OPS = frozenset({"=", "!=", "like", "ilike"})
LIST_OPS = frozenset({"in", "not in"})
NUMBER_OPS = frozenset({"=", "!=", "<", "<=", ">", ">="})
_OP_ALIASES = {"==": "=", "<>": "!="}

PROMPT_TAG = "mlflow.prompt.is_prompt"
ABSENT_TAGS = {PROMPT_TAG: "false"}
"""Tags that read as a value when a model lacks them. MLflow's client adds
``tag.`mlflow.prompt.is_prompt` != 'true'`` to every registered-model search (prompts live
in the same registry), and MLflow's server counts a model without the tag as no prompt."""
_OP_ORDER = ("=", "!=", "like", "ilike", "in", "not in")


@dataclass(frozen=True)
class Grammar:
    """What one search reads: its attributes, which of them take ``IN``, and how it sorts."""

    what: str
    strings: frozenset[str]
    numbers: frozenset[str]
    lists: frozenset[str]
    """String attributes that also take ``IN`` and ``NOT IN``."""
    order_keys: Mapping[str, str]
    """An ``order_by`` key to the attribute it sorts on."""
    natural: tuple[tuple[str, bool], ...]
    """The order after the asked one: (attribute, ascending), each unless already asked for."""

    def columns(self) -> str:
        return ", ".join(sorted(self.strings | self.numbers)) + " or tags.<key>"


REGISTERED_MODELS = Grammar(
    what="registered model",
    strings=frozenset({"name"}),
    numbers=frozenset(),
    lists=frozenset({"name"}),
    order_keys={
        "name": "name",
        "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
        "timestamp": "last_updated_timestamp",
    },
    natural=(("name", True),),
)
MODEL_VERSIONS = Grammar(
    what="model version",
    strings=frozenset({"name", "run_id", "source_path"}),
    numbers=frozenset({"version_number"}),
    lists=frozenset({"name", "run_id"}),
    order_keys={
        "name": "name",
        "version_number": "version_number",
        "creation_timestamp": "creation_timestamp",
        "last_updated_timestamp": "last_updated_timestamp",
    },
    natural=(("name", True), ("version_number", False)),
)


@dataclass(frozen=True)
class Term:
    """One comparison: an attribute or a tag, an operator (lower case), and what it compares with."""

    kind: Literal["attribute", "tag"]
    key: str
    op: str
    value: Value
    text: str
    """The term as written, for messages."""

    def matches(self, attributes: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
        if self.kind == "tag":
            actual = tags.get(self.key, ABSENT_TAGS.get(self.key))
            if actual is None:
                return False
        else:
            actual = attributes.get(self.key)
            if actual is None:
                actual = ""
        return _compare(self.op, actual, self.value)


def _compare(op: str, actual: Any, value: Value) -> bool:
    if op == "=":
        return bool(actual == value)
    if op == "!=":
        return bool(actual != value)
    if op in ("like", "ilike"):
        return like_matcher(str(value), ignore_case=op == "ilike")(str(actual))
    if op == "in":
        return actual in value
    if op == "not in":
        return actual not in value
    comparisons: dict[str, Callable[[Any, Any], bool]] = {
        "<": lambda a, b: a < b,
        "<=": lambda a, b: a <= b,
        ">": lambda a, b: a > b,
        ">=": lambda a, b: a >= b,
    }
    return comparisons[op](actual, value)


@dataclass(frozen=True)
class Filter:
    """A parsed filter: every term must hold (no terms: everything matches)."""

    terms: tuple[Term, ...] = ()

    def matches(self, attributes: Mapping[str, Any], tags: Mapping[str, str]) -> bool:
        return all(term.matches(attributes, tags) for term in self.terms)

    def equal_to(self, attribute: str) -> str | None:
        """The value of an ``<attribute> = '...'`` term, if there is one (so a search can narrow first)."""
        for term in self.terms:
            if term.kind == "attribute" and term.key == attribute and term.op == "=":
                return str(term.value)
        return None


def parse_filter(source: str | None, grammar: Grammar) -> Filter:
    """A filter of ``grammar``'s search, or a :class:`FilterError` (400) naming the term it cannot read."""
    if source is None or not source.strip():
        return Filter()
    what = f"{grammar.what} filter"
    check_source(source, what)
    tokens = tokenize(source)
    terms: list[Term] = []
    position = 0
    while True:
        term, position = _Term(source, tokens, grammar).parse(position)
        terms.append(term)
        if len(terms) > MAX_FILTER_TERMS:
            raise FilterError(f"invalid {what}: more than {MAX_FILTER_TERMS} terms")
        token = tokens[position]
        if token.kind == "end":
            return Filter(tuple(terms))
        word = token.text.lower() if token.kind == "word" else ""
        if word == "or":
            raise FilterError(
                f"invalid {what} at column {token.column}: OR is not supported; MLflow's registry "
                "search joins terms with AND only"
            )
        if word != "and":
            raise FilterError(
                f"invalid {what} at column {token.column}: expected AND or the end of the filter "
                f"after '{term.text}', got {token.describe()}"
            )
        position += 1


@dataclass
class _Term:
    """Reads one comparison from ``tokens`` (a small recursive-descent step, one term at a time)."""

    source: str
    tokens: list[Token]
    grammar: Grammar

    @property
    def what(self) -> str:
        return f"{self.grammar.what} filter"

    def _error(self, start: int, end: int, problem: str) -> FilterError:
        return FilterError(f"invalid {self.what} term '{self._text(start, end)}': {problem}")

    def _text(self, start: int, end: int) -> str:
        first = self.tokens[start].column - 1
        last = self.tokens[min(end, len(self.tokens) - 1)].column - 1
        text = self.source[first:last].strip() or self.tokens[start].text
        return text if len(text) <= 100 else text[:100] + "..."

    def parse(self, start: int) -> tuple[Term, int]:
        kind, key, position = self._column(start)
        op, position = self._operator(start, position)
        value, position = self._value(start, position, op)
        term = Term(kind, key, op, value, self._text(start, position))
        self._check(term, start, position)
        return term, position

    def _column(self, start: int) -> tuple[Literal["attribute", "tag"], str, int]:
        token = self.tokens[start]
        if token.kind != "word":
            raise FilterError(
                f"invalid {self.what} at column {token.column}: expected a column "
                f"({self.grammar.columns()}), got {token.describe()}"
            )
        text = token.text
        prefix, dot, rest = text.partition(".")
        if dot and prefix.lower() in ("tags", "tag"):
            if rest:
                return "tag", rest, start + 1
            quoted = self.tokens[start + 1]
            if quoted.kind == "string":
                return "tag", str(quoted.value), start + 2
            raise self._error(
                start, start + 2, "a tag is tags.<key> (quote a key with spaces: tags.`my key`)"
            )
        if dot and prefix.lower() in ("attribute", "attributes"):
            text = rest
        if text not in self.grammar.strings | self.grammar.numbers:
            raise self._error(
                start,
                start + 1,
                f"'{text}' is not a column a {self.grammar.what} search reads; use {self.grammar.columns()}",
            )
        return "attribute", text, start + 1

    def _operator(self, start: int, position: int) -> tuple[str, int]:
        token = self.tokens[position]
        if token.kind == "op":
            return _OP_ALIASES.get(token.text, token.text), position + 1
        word = token.text.lower() if token.kind == "word" else ""
        if word in ("like", "ilike", "in"):
            return word, position + 1
        following = self.tokens[position + 1] if position + 1 < len(self.tokens) else token
        if word == "not" and following.kind == "word" and following.text.lower() == "in":
            return "not in", position + 2
        raise self._error(
            start, position + 1, f"expected a comparison (=, !=, LIKE, ILIKE, IN ...), got {token.describe()}"
        )

    def _value(self, start: int, position: int, op: str) -> tuple[Value, int]:
        if op in LIST_OPS:
            return self._list(start, position)
        token = self.tokens[position]
        if token.kind == "string":
            return str(token.value), position + 1
        if token.kind == "number" and isinstance(token.value, int):
            return int(token.value), position + 1
        raise self._error(
            start, position + 1, f"expected a quoted string or a whole number, got {token.describe()}"
        )

    def _list(self, start: int, position: int) -> tuple[tuple[str, ...], int]:
        if self.tokens[position].text != "(":
            raise self._error(start, position + 1, "IN takes a list in parentheses: IN ('a', 'b')")
        values: list[str] = []
        position += 1
        while True:
            token = self.tokens[position]
            if token.kind != "string":
                raise self._error(
                    start, position + 1, f"expected a quoted string in the list, got {token.describe()}"
                )
            values.append(str(token.value))
            closing = self.tokens[position + 1]
            position += 2
            if closing.text == ")":
                return tuple(values), position
            if closing.text != ",":
                raise self._error(
                    start, position, f"expected ',' or ')' in the list, got {closing.describe()}"
                )

    def _check(self, term: Term, start: int, end: int) -> None:
        grammar = self.grammar
        if term.kind == "tag" or term.key in grammar.strings:
            allowed = STRING_OPS | (
                LIST_OPS if term.kind == "attribute" and term.key in grammar.lists else set()
            )
            if term.op not in allowed:
                names = ", ".join(op.upper() for op in _OP_ORDER if op in allowed)
                raise self._error(start, end, f"{_subject(term)} compares with {names}")
            values = term.value if isinstance(term.value, tuple) else (term.value,)
            if not all(isinstance(v, str) for v in values):
                raise self._error(start, end, f"{_subject(term)} compares with a quoted string")
            return
        if term.op not in NUMBER_OPS:
            raise self._error(start, end, f"{term.key} compares with =, !=, <, <=, > or >=")
        if not isinstance(term.value, int):
            raise self._error(start, end, f"{term.key} compares with a whole number")


def _subject(term: Term) -> str:
    return "a tag" if term.kind == "tag" else term.key


def parse_order_by(clauses: Sequence[str] | None, grammar: Grammar) -> list[tuple[str, bool]]:
    """``order_by`` clauses (``"name ASC"``, ``"version_number DESC"``) as (attribute, ascending),
    followed by the search's natural order."""
    keys: list[tuple[str, bool]] = []
    for clause in clauses or ():
        check_source(clause, "order_by")
        words = clause.split()
        if not words or len(words) > 2 or (len(words) == 2 and words[1].upper() not in ("ASC", "DESC")):
            raise FilterError(f"invalid order_by clause '{clause[:100]}': write '<key> [ASC|DESC]'")
        key = words[0].removeprefix("attributes.").removeprefix("attribute.")
        attribute = grammar.order_keys.get(key)
        if attribute is None:
            raise FilterError(
                f"invalid order_by clause '{clause[:100]}': a {grammar.what} search sorts by "
                f"{', '.join(grammar.order_keys)}"
            )
        if any(attribute == seen for seen, _ in keys):
            raise FilterError(f"invalid order_by: '{key}' is sorted on twice")
        keys.append((attribute, len(words) == 1 or words[1].upper() == "ASC"))
        if len(keys) > MAX_ORDER_KEYS:
            raise FilterError(f"invalid order_by: more than {MAX_ORDER_KEYS} keys")
    asked = {attribute for attribute, _ in keys}
    return keys + [(attribute, up) for attribute, up in grammar.natural if attribute not in asked]


def ordered(
    items: Sequence[T], keys: Sequence[tuple[str, bool]], attributes: Callable[[T], Mapping[str, Any]]
) -> list[T]:
    """``items`` sorted by ``keys`` (the first key first), each ascending or not."""
    result = list(items)
    for attribute, ascending in reversed(keys):
        result.sort(key=lambda item: attributes(item)[attribute], reverse=not ascending)
    return result
