"""MLflow's logged-model search: the run filter language (:mod:`quayside.tracking.search`) read in Python.

    metrics.accuracy > 0.9 and params.C = '0.5' and name = 'model' and status = 'READY'

A logged model keeps its params, tags and latest metrics as JSON with its record, so a
filter is parsed into the run language's syntax tree, with a logged model's attributes
(:data:`MODEL_ATTRIBUTES`, MLflow's names), and evaluated here against each model of the
searched experiments, in SQL's three-valued logic: a comparison with a value the model
does not have is unknown, and neither it nor its negation matches, as for runs. A metric
compares its latest value (MLflow's SQL store matches any of its points). ``order_by`` is
MLflow's list of ``{field_name, ascending}``: missing values sort last, then newest first,
then by id, as MLflow's store orders.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from quayside.errors import FilterError
from quayside.tracking.experiment_filter import like_matcher
from quayside.tracking.mlflow_models import STATUSES, MlflowLoggedModel
from quayside.tracking.search import (
    Attributes,
    BoolOp,
    Column,
    Comparison,
    Node,
    Not,
    check_operator,
    check_value,
    parse_filter,
    parse_order_by,
)

MODEL_ATTRIBUTES = Attributes(
    "logged model",
    {
        # name in the filter -> (field of MlflowLoggedModel, "string" | "number"), MLflow's names
        "name": ("name", "string"),
        "model_id": ("id", "string"),
        "model_type": ("model_type", "string"),
        "status": ("status", "string"),
        "source_run_id": ("run_id", "string"),
        "creation_timestamp": ("created_at", "number"),
        "creation_time": ("created_at", "number"),
        "last_updated_timestamp": ("updated_at", "number"),
        "last_updated_time": ("updated_at", "number"),
    },
)

_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}

Predicate = Callable[[MlflowLoggedModel], bool | None]


@dataclass(frozen=True)
class ModelOrder:
    """One key of MLflow's logged-model ``order_by``: a field (``metrics.accuracy``, ``name``) and its direction."""

    field_name: str
    ascending: bool = True


def value_of(model: MlflowLoggedModel, target: Column) -> Any:
    """What a column holds for a model, ``None`` where it has none (a NaN metric is none, as for runs)."""
    if target.kind == "metrics":
        point = model.metrics.get(target.key)
        return None if point is None or math.isnan(point.value) else point.value
    if target.kind == "params":
        return model.params.get(target.key)
    if target.kind == "tags":
        return model.tags.get(target.key)
    return getattr(model, MODEL_ATTRIBUTES.types[target.key][0])


def _type_of(target: Column) -> str:
    if target.kind == "metrics":
        return "number"
    if target.kind == "attributes":
        return MODEL_ATTRIBUTES.types[target.key][1]
    return "string"


def _status(target: Column, value: Any) -> Any:
    """MLflow writes a status as its client shows it (``READY``) or as its wire does (``LOGGED_MODEL_READY``)."""
    if target.kind != "attributes" or target.key != "status" or not isinstance(value, str):
        return value
    named = {status.removeprefix("LOGGED_MODEL_"): status for status in STATUSES} | {"FAILED": STATUSES[2]}
    return named.get(value, value)


def _comparison(node: Comparison) -> Predicate:
    target, op = node.target, node.op
    value_type = _type_of(target)
    if op in ("is null", "is not null"):
        wanted = op == "is null"
        return lambda model: (value_of(model, target) is None) == wanted
    if op in ("in", "not in"):
        values = {_status(target, check_value(node, v, c, value_type)) for v, c in node.value}
        inside = op == "in"

        def member(model: MlflowLoggedModel) -> bool | None:
            have = value_of(model, target)
            if have is None:
                return None if inside else False
            return (have in values) == inside

        return member
    value = _status(target, check_operator(node, value_type))
    if op in ("like", "ilike"):
        like = like_matcher(value, ignore_case=op == "ilike")
        return lambda model: _unknown_or(value_of(model, target), like)
    compare = _COMPARE[op]
    return lambda model: _unknown_or(value_of(model, target), lambda have: compare(have, value))


def _unknown_or(have: Any, test: Callable[[Any], bool]) -> bool | None:
    return None if have is None else test(have)


def _predicate(node: Node) -> Predicate:
    if isinstance(node, Comparison):
        return _comparison(node)
    if isinstance(node, Not):
        inner = _predicate(node.operand)
        return lambda model: None if (result := inner(model)) is None else not result
    assert isinstance(node, BoolOp)
    operands = [_predicate(operand) for operand in node.operands]
    return _all(operands) if node.op == "and" else _any(operands)


def _all(operands: Sequence[Predicate]) -> Predicate:
    def both(model: MlflowLoggedModel) -> bool | None:
        results = [operand(model) for operand in operands]
        if False in results:
            return False
        return None if None in results else True

    return both


def _any(operands: Sequence[Predicate]) -> Predicate:
    def either(model: MlflowLoggedModel) -> bool | None:
        results = [operand(model) for operand in operands]
        if True in results:
            return True
        return None if None in results else False

    return either


def model_filter(filter_string: str) -> Callable[[MlflowLoggedModel], bool]:
    """A predicate for MLflow's logged-model filter (refused, naming the column, if it does not parse)."""
    node = parse_filter(filter_string, MODEL_ATTRIBUTES)
    if node is None:
        return lambda _model: True
    predicate = _predicate(node)
    return lambda model: predicate(model) is True


def order_keys(order_by: Sequence[ModelOrder]) -> list[tuple[Column, bool]]:
    """Each key's column and whether it sorts descending; refused if a field name is not one column."""
    keys = []
    for order in order_by:
        parsed = parse_order_by(order.field_name, MODEL_ATTRIBUTES)
        if len(parsed) != 1 or parsed[0].descending:
            raise FilterError(
                f"invalid order-by field name '{order.field_name}': name one column "
                "(metrics.<key>, params.<key>, tags.<key> or a logged model attribute) and set 'ascending'"
            )
        keys.append((parsed[0].target, not order.ascending))
    return keys


def sort_models(
    models: Sequence[MlflowLoggedModel], order_by: Sequence[ModelOrder]
) -> list[MlflowLoggedModel]:
    """Models in MLflow's order: by each key (missing values last), then newest first, then by id."""
    keys = order_keys(order_by)
    ordered = sorted(models, key=lambda m: m.id)
    ordered.sort(key=lambda m: m.created_at, reverse=True)
    # Python's sort is stable: sorting by the last key first leaves the first key deciding.
    for target, descending in reversed(keys):
        present = [m for m in ordered if value_of(m, target) is not None]
        missing = [m for m in ordered if value_of(m, target) is None]
        present.sort(key=lambda m, t=target: value_of(m, t), reverse=descending)
        ordered = present + missing
    return ordered
