"""The run filter language: a tokenizer and a recursive-descent parser that build SQLAlchemy expressions.

    metrics.accuracy > 0.9 and params.model = 'rf' and tags.team != 'x'
    (params.model in ('rf', 'gbm') or tags."my team" like 'ml-%') and not status = 'FAILED'
    tags.quayside.git.dirty is null

Grammar (keywords are case-insensitive)::

    filter     := or_expr
    or_expr    := and_expr ("or" and_expr)*
    and_expr   := not_expr ("and" not_expr)*
    not_expr   := "not" not_expr | "(" or_expr ")" | comparison
    comparison := column op value | column ["not"] "in" "(" value ("," value)* ")" | column "is" ["not"] "null"
    column     := ("metrics" | "params" | "tags" | "attributes") "." key | attribute
    op         := "=" | "!=" | "<" | "<=" | ">" | ">=" | "like" | "ilike"

A metric compares its latest value (highest step, then newest); params and tags
compare as strings. Values only ever become bound parameters, never SQL text, and
every error names the column (1-based) where parsing failed.

The same language filters MLflow's logged models (:mod:`quayside.tracking.model_search`),
with their attributes instead of a run's: :class:`Attributes` names the ones a parse knows.

A filter is bounded before it reaches the database, so that no filter can exhaust
Python's stack or the database's: at most :data:`MAX_FILTER_LENGTH` characters,
:data:`MAX_FILTER_DEPTH` levels of parentheses and ``not``, and :data:`MAX_FILTER_TERMS`
comparisons, each past it a :class:`~quayside.errors.FilterError` naming the limit. The
binding limit is SQLite's parser stack (100 entries in common builds): the most
stack-hungry nesting, ``a or b and (...)``, holds five entries per level and overflows
past 16 levels, so 10 leaves room for the comparison inside. Expression depth (SQLite
refuses 1,000) stays under about 120, and bound values (SQLite 32,766, PostgreSQL
65,535) under about 5,200, since an ``in`` list holds one value per two characters.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, and_, desc, not_, or_, select, true
from sqlalchemy.sql.elements import UnaryExpression

from quayside.errors import FilterError
from quayside.tracking.entities import INT64_MAX, INT64_MIN
from quayside.tracking.tables import MetricRow, ParamRow, RunRow, TagRow

Kind = Literal["metrics", "params", "tags", "attributes"]

MAX_FILTER_LENGTH = 10_000
"""Characters in a filter (or in all order-by clauses together): 100 long comparisons fit with room."""
MAX_FILTER_DEPTH = 10
"""Nesting of parentheses and ``not``: a person rarely writes more than 3 or 4; SQLite's parser takes 16."""
MAX_FILTER_TERMS = 100
"""Comparisons in a filter (an ``in`` list is one): more is a query to split, not to type."""
MAX_ORDER_KEYS = 20
"""Order-by keys: a sort on more than a few columns is indistinguishable from one on 20."""

KEYWORDS = {"and", "or", "not", "in", "is", "null", "like", "ilike", "asc", "desc"}
ATTRIBUTES: dict[str, tuple[str, str]] = {
    # name in the filter -> (column on RunRow, "string" | "number")
    "id": ("id", "string"),
    "run_id": ("id", "string"),
    "name": ("name", "string"),
    "run_name": ("name", "string"),
    "status": ("status", "string"),
    "start_time": ("start_time", "number"),
    "end_time": ("end_time", "number"),
    "exit_code": ("exit_code", "number"),
    "parent_run_id": ("parent_run_id", "string"),
}
COLUMN_HINT = (
    "a column like metrics.<key>, params.<key>, tags.<key> or a run attribute (status, name, start_time, ...)"
)


@dataclass(frozen=True)
class Attributes:
    """The attributes a filter may name bare (``status``) or as ``attributes.status``, and their types."""

    noun: str
    """What they are attributes of, in error messages ("run")."""
    types: dict[str, tuple[str, str]]
    """Name in the filter -> (field it reads, ``"string"`` or ``"number"``)."""

    @property
    def column_hint(self) -> str:
        examples = ", ".join(list(self.types)[:3])
        return f"a column like metrics.<key>, params.<key>, tags.<key> or a {self.noun} attribute ({examples}, ...)"


RUN_ATTRIBUTES = Attributes("run", ATTRIBUTES)


@dataclass(frozen=True)
class Token:
    kind: Literal["word", "string", "number", "op", "punct", "end"]
    text: str
    value: Any
    column: int

    def describe(self) -> str:
        return "the end of the filter" if self.kind == "end" else f"'{self.text}'"


_TOKEN = re.compile(
    r"""
    (?P<space>\s+)
  | (?P<number>[-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?(?![A-Za-z_]))
  | (?P<word>[A-Za-z_][A-Za-z0-9_\-./]*)
  | (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.)*"|`[^`]*`)
  | (?P<op><=|>=|!=|<>|==|=|<|>)
  | (?P<punct>[(),])
    """,
    re.VERBOSE,
)


def _unquote(text: str) -> str:
    body = text[1:-1]
    if text[0] == "'":
        body = body.replace("''", "'")
    return re.sub(r"\\(.)", r"\1", body) if text[0] != "`" else body


# PostgreSQL text holds no NUL, and a lone surrogate cannot be encoded for either database.
_UNSAFE_CHARACTER = re.compile("[\x00\ud800-\udfff]")


def _excerpt(text: str, limit: int = 20) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def check_source(source: str, what: str = "filter") -> None:
    """Refuse a filter (or order-by) over the length limit or holding text no database can compare."""
    if len(source) > MAX_FILTER_LENGTH:
        raise FilterError(
            f"invalid {what}: it is {len(source)} characters long; the limit is {MAX_FILTER_LENGTH}"
        )
    unsafe = _UNSAFE_CHARACTER.search(source)
    if unsafe is not None:
        raise FilterError(
            f"invalid {what} at column {unsafe.start() + 1}: {unsafe.group()!r} is not allowed "
            "(NUL characters and lone surrogates cannot be stored or compared)"
        )


def _number(text: str, column: int) -> int | float:
    if any(c in text for c in ".eE"):
        return float(text)
    digits = text.lstrip("+-").lstrip("0")
    # Measured before int(): Python refuses to convert more than 4,300 digits.
    if len(digits) > 19 or not INT64_MIN <= int(text) <= INT64_MAX:
        raise FilterError(
            f"invalid filter at column {column}: the integer {_excerpt(text)} is out of range "
            "(64-bit; write larger numbers as floats, e.g. 1e20)"
        )
    return int(text)


def tokenize(source: str) -> list[Token]:
    tokens: list[Token] = []
    position = 0
    while position < len(source):
        match = _TOKEN.match(source, position)
        if match is None:
            fragment = source[position : position + 10]
            if source[position] in "'\"`":
                raise FilterError(
                    f"invalid filter at column {position + 1}: unterminated string {fragment!r}"
                )
            raise FilterError(f"invalid filter at column {position + 1}: unexpected {fragment!r}")
        kind = match.lastgroup
        text = match.group()
        if kind == "number":
            tokens.append(Token("number", text, _number(text, position + 1), position + 1))
        elif kind == "string":
            tokens.append(Token("string", text, _unquote(text), position + 1))
        elif kind in ("word", "op", "punct"):
            tokens.append(Token(kind, text, text, position + 1))  # type: ignore[arg-type]
        position = match.end()
    tokens.append(Token("end", "", None, len(source) + 1))
    return tokens


# --- the syntax tree -------------------------------------------------------------------


@dataclass(frozen=True)
class Column:
    kind: Kind
    key: str
    column: int


@dataclass(frozen=True)
class Comparison:
    target: Column
    op: str
    value: Any
    value_column: int


@dataclass(frozen=True)
class BoolOp:
    op: Literal["and", "or"]
    operands: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    operand: Node


Node = Comparison | BoolOp | Not


@dataclass(frozen=True)
class OrderKey:
    target: Column
    descending: bool


class _Parser:
    def __init__(self, source: str, what: str = "filter", attributes: Attributes = RUN_ATTRIBUTES) -> None:
        check_source(source, what)
        self.attributes = attributes
        self.hint = COLUMN_HINT if attributes is RUN_ATTRIBUTES else attributes.column_hint
        self.tokens = tokenize(source)
        self.index = 0
        self.depth = 0
        self.terms = 0

    @property
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        self.index += 1
        return token

    def is_keyword(self, *words: str) -> bool:
        token = self.current
        return token.kind == "word" and token.text.lower() in words

    def fail(self, expected: str, token: Token | None = None) -> FilterError:
        token = token or self.current
        return FilterError(
            f"invalid filter at column {token.column}: expected {expected}, got {token.describe()}"
        )

    def expect_punct(self, text: str) -> Token:
        if self.current.kind != "punct" or self.current.text != text:
            raise self.fail(f"'{text}'")
        return self.advance()

    def expect_end(self) -> None:
        if self.current.kind != "end":
            raise self.fail("'and', 'or' or the end of the filter")

    # filter := or_expr
    def or_expr(self) -> Node:
        operands = [self.and_expr()]
        while self.is_keyword("or"):
            self.advance()
            operands.append(self.and_expr())
        return operands[0] if len(operands) == 1 else BoolOp("or", tuple(operands))

    def and_expr(self) -> Node:
        operands = [self.not_expr()]
        while self.is_keyword("and"):
            self.advance()
            operands.append(self.not_expr())
        return operands[0] if len(operands) == 1 else BoolOp("and", tuple(operands))

    def not_expr(self) -> Node:
        if self.is_keyword("not"):
            self.nest()
            node: Node = Not(self.not_expr())
            self.depth -= 1
            return node
        if self.current.kind == "punct" and self.current.text == "(":
            self.nest()
            node = self.or_expr()
            self.expect_punct(")")
            self.depth -= 1
            return node
        return self.comparison()

    def nest(self) -> None:
        """Step into a ``not`` or ``(``; refused past the depth limit, before the recursion gets deep."""
        token = self.advance()
        self.depth += 1
        if self.depth > MAX_FILTER_DEPTH:
            raise FilterError(
                f"invalid filter at column {token.column}: parentheses and 'not' nest more than "
                f"{MAX_FILTER_DEPTH} deep; the limit is {MAX_FILTER_DEPTH}"
            )

    def column(self) -> Column:
        token = self.current
        if token.kind != "word" or token.text.lower() in KEYWORDS:
            raise self.fail(self.hint)
        self.advance()
        prefix, dot, key = token.text.partition(".")
        prefix = prefix.lower()
        if prefix in (
            "metrics",
            "metric",
            "params",
            "param",
            "tags",
            "tag",
            "attributes",
            "attribute",
            "run",
        ):
            kind = {"metric": "metrics", "param": "params", "tag": "tags", "attribute": "attributes"}.get(
                prefix, prefix
            )
            kind = "attributes" if kind == "run" else kind
            if not key:
                if (
                    not dot
                    or self.current.kind != "string"
                    or self.current.column != token.column + len(token.text)
                ):
                    raise FilterError(
                        f"invalid filter at column {token.column + len(token.text)}: expected a key after "
                        f"'{prefix}.' (quote keys with spaces: {prefix}.\"my key\")"
                    )
                key = self.advance().value
            return self._checked(Column(kind, key, token.column))  # type: ignore[arg-type]
        if dot:
            raise FilterError(
                f"invalid filter at column {token.column}: unknown column '{token.text}'; expected {self.hint}"
            )
        return self._checked(Column("attributes", token.text, token.column))

    def _checked(self, column: Column) -> Column:
        known = self.attributes.types
        if column.kind == "attributes" and column.key.lower() not in known:
            raise FilterError(
                f"invalid filter at column {column.column}: unknown {self.attributes.noun} attribute "
                f"'{column.key}' (known: {', '.join(sorted(known))})"
            )
        if column.kind == "attributes":
            return Column("attributes", column.key.lower(), column.column)
        return column

    def value(self) -> tuple[Any, int]:
        token = self.current
        if token.kind in ("string", "number"):
            self.advance()
            return token.value, token.column
        raise self.fail("a quoted string or a number")

    def comparison(self) -> Comparison:
        self.terms += 1
        if self.terms > MAX_FILTER_TERMS:
            raise FilterError(
                f"invalid filter at column {self.current.column}: more than {MAX_FILTER_TERMS} comparisons; "
                f"the limit is {MAX_FILTER_TERMS} (an 'in' list counts as one)"
            )
        target = self.column()
        token = self.current
        if self.is_keyword("is"):
            self.advance()
            negate = self.is_keyword("not")
            if negate:
                self.advance()
            if not self.is_keyword("null"):
                raise self.fail("'null'")
            self.advance()
            return Comparison(target, "is not null" if negate else "is null", None, token.column)
        if self.is_keyword("not", "in"):
            negate = self.is_keyword("not")
            if negate:
                self.advance()
                if not self.is_keyword("in"):
                    raise self.fail("'in'")
            self.advance()
            self.expect_punct("(")
            values = [self.value()]
            while self.current.kind == "punct" and self.current.text == ",":
                self.advance()
                values.append(self.value())
            self.expect_punct(")")
            return Comparison(target, "not in" if negate else "in", tuple(values), values[0][1])
        if token.kind == "op":
            op = {"==": "=", "<>": "!="}.get(token.text, token.text)
        elif self.is_keyword("like", "ilike"):
            op = token.text.lower()
        else:
            raise self.fail("a comparison (=, !=, <, <=, >, >=, like, ilike, in, is null)")
        self.advance()
        value, column = self.value()
        return Comparison(target, op, value, column)


def parse_filter(source: str, attributes: Attributes = RUN_ATTRIBUTES) -> Node | None:
    """Parse a filter into its syntax tree; an empty filter is ``None``."""
    if not source or not source.strip():
        return None
    parser = _Parser(source, attributes=attributes)
    node = parser.or_expr()
    parser.expect_end()
    return node


def parse_order_by(
    clauses: list[str] | tuple[str, ...] | str | None, attributes: Attributes = RUN_ATTRIBUTES
) -> list[OrderKey]:
    """Parse ``"metrics.accuracy desc"``-style clauses (one string may hold several, comma-separated)."""
    if clauses is None:
        return []
    clauses = [clauses] if isinstance(clauses, str) else list(clauses)
    if sum(len(clause) for clause in clauses) > MAX_FILTER_LENGTH:
        raise FilterError(f"invalid order-by: its clauses are longer than {MAX_FILTER_LENGTH} characters")
    keys: list[OrderKey] = []
    for clause in clauses:
        if not clause.strip():
            continue
        parser = _Parser(clause, "order-by", attributes)
        while True:
            if len(keys) == MAX_ORDER_KEYS:
                raise FilterError(
                    f"invalid order-by: more than {MAX_ORDER_KEYS} keys; the limit is {MAX_ORDER_KEYS}"
                )
            target = parser.column()
            descending = False
            if parser.is_keyword("asc", "desc"):
                descending = parser.advance().text.lower() == "desc"
            keys.append(OrderKey(target, descending))
            if parser.current.kind == "punct" and parser.current.text == ",":
                parser.advance()
                continue
            if parser.current.kind != "end":
                raise FilterError(
                    f"invalid order-by at column {parser.current.column}: expected 'asc', 'desc', ',' "
                    f"or the end, got {parser.current.describe()}"
                )
            break
    return keys


# --- to SQLAlchemy ---------------------------------------------------------------------


def latest_metric_value(key: str) -> Any:
    """The latest value of a run's metric ``key`` as a correlated scalar subquery (NULL if never logged)."""
    return (
        select(MetricRow.value)
        .where(MetricRow.run_id == RunRow.id, MetricRow.key == key)
        .order_by(MetricRow.step.desc(), MetricRow.timestamp.desc(), MetricRow.id.desc())
        .limit(1)
        .correlate(RunRow)
        .scalar_subquery()
    )


def _string_value(table: type[ParamRow] | type[TagRow], key: str) -> Any:
    return (
        select(table.value)
        .where(table.run_id == RunRow.id, table.key == key)
        .correlate(RunRow)
        .scalar_subquery()
    )


def _operand(target: Column) -> tuple[Any, str]:
    if target.kind == "metrics":
        return latest_metric_value(target.key), "number"
    if target.kind == "params":
        return _string_value(ParamRow, target.key), "string"
    if target.kind == "tags":
        return _string_value(TagRow, target.key), "string"
    name, value_type = ATTRIBUTES[target.key]
    return getattr(RunRow, name), value_type


def _label(target: Column) -> str:
    return target.key if target.kind == "attributes" else f"{target.kind}.{target.key}"


def check_value(comparison: Comparison, value: Any, column: int, value_type: str) -> Any:
    """The value to compare with, if its type suits the column's (``status`` compares upper-cased)."""
    label = _label(comparison.target)
    if value_type == "number" and not isinstance(value, int | float):
        raise FilterError(f"invalid filter at column {column}: {label} is a number; compare it with a number")
    if value_type == "string" and not isinstance(value, str):
        raise FilterError(
            f"invalid filter at column {column}: {label} holds strings; quote the value ('{value}')"
        )
    if comparison.target.key == "status" and comparison.target.kind == "attributes":
        return str(value).upper()
    return value


def _compile_comparison(comparison: Comparison) -> ColumnElement[bool]:
    operand, value_type = _operand(comparison.target)
    op = comparison.op
    if op == "is null":
        return operand.is_(None)
    if op == "is not null":
        return operand.is_not(None)
    if op in ("in", "not in"):
        values = [check_value(comparison, v, c, value_type) for v, c in comparison.value]
        return operand.in_(values) if op == "in" else and_(operand.is_not(None), operand.not_in(values))
    value = check_operator(comparison, value_type)
    if op in ("like", "ilike"):
        return operand.like(value) if op == "like" else operand.ilike(value)
    return {
        "=": operand.__eq__,
        "!=": operand.__ne__,
        "<": operand.__lt__,
        "<=": operand.__le__,
        ">": operand.__gt__,
        ">=": operand.__ge__,
    }[op](value)


def check_operator(comparison: Comparison, value_type: str) -> Any:
    """The value of a binary comparison, if its operator suits the column's type (no ``<`` on strings,
    no ``like`` on numbers)."""
    op = comparison.op
    value = check_value(comparison, comparison.value, comparison.value_column, value_type)
    if op in ("like", "ilike") and value_type != "string":
        raise FilterError(
            f"invalid filter at column {comparison.value_column}: {op} compares strings, "
            f"and {_label(comparison.target)} is a number"
        )
    if value_type == "string" and op in ("<", "<=", ">", ">="):
        raise FilterError(
            f"invalid filter at column {comparison.value_column}: {_label(comparison.target)} holds strings; "
            "compare it with =, !=, like, ilike or in"
        )
    return value


def compile_filter(node: Node | None) -> ColumnElement[bool]:
    """The syntax tree as a SQLAlchemy condition on :class:`RunRow` (values bound, never inlined)."""
    if node is None:
        return true()
    if isinstance(node, Comparison):
        return _compile_comparison(node)
    if isinstance(node, Not):
        return not_(compile_filter(node.operand))
    operands = [compile_filter(operand) for operand in node.operands]
    return and_(*operands) if node.op == "and" else or_(*operands)


def compile_order_by(keys: list[OrderKey]) -> list[UnaryExpression[Any]]:
    """Order clauses, missing values last, then newest run first as the tie-breaker."""
    clauses: list[UnaryExpression[Any]] = []
    for key in keys:
        operand, _ = _operand(key.target)
        clauses.append((operand.desc() if key.descending else operand.asc()).nulls_last())
    clauses.extend([desc(RunRow.start_time), desc(RunRow.id)])
    return clauses
