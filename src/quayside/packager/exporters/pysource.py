"""Generated Python source that carries data only as literals.

A value from a package (its name, a file path, a signature name) reaches generated
code only through :func:`literal`, which emits it with ``repr`` and proves that the
text evaluates back to exactly that value, so no value can close a string, open a
comment or become a statement. :func:`check_constants` re-reads a whole generated
module and checks that each constant it was given is still there, as that value.
"""

from __future__ import annotations

import ast
import builtins
import keyword
from collections.abc import Mapping
from typing import Any

_SCALARS = (str, int, float, bool, type(None))


def _check_plain(value: Any) -> None:
    # Exact types only: a subclass could carry its own __repr__.
    if type(value) in _SCALARS:
        return
    if type(value) in (list, tuple):
        for item in value:
            _check_plain(item)
        return
    if type(value) is dict:
        for key, item in value.items():
            _check_plain(key)
            _check_plain(item)
        return
    raise TypeError(f"cannot emit a {type(value).__name__} as a Python literal")


def literal(value: Any) -> str:
    """``value`` (str, int, float, bool, None, or lists, tuples and dicts of them) as Python source."""
    _check_plain(value)
    text = repr(value)
    if ast.literal_eval(text) != value:  # NaN and infinities have no literal
        raise ValueError(f"{text} does not evaluate back to the value it was made from")
    return text


def assignments(constants: Mapping[str, Any]) -> str:
    """One ``NAME = <literal>`` line per constant."""
    for name in constants:
        if not name.isidentifier() or keyword.iskeyword(name):
            raise ValueError(f"{name!r} is not a Python name")
    return "\n".join(f"{name} = {literal(value)}" for name, value in constants.items())


def identifiers(source: str) -> set[str]:
    """Every name the module binds or reads (imports, definitions, arguments, variables)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def unclaimed(name: str, taken: set[str], suffix: str) -> str:
    """``name``, or ``name + suffix`` when it is a keyword, a builtin or one of ``taken``."""
    if keyword.iskeyword(name) or hasattr(builtins, name) or name in taken:
        return name + suffix
    return name


def check_constants(source: str, constants: Mapping[str, Any]) -> None:
    """Raise unless ``source`` parses and assigns each constant, at module level, exactly its value."""
    found: dict[str, Any] = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            name = node.targets[0].id
            if name in constants:
                found[name] = ast.literal_eval(node.value)
    if found != dict(constants):
        raise AssertionError("a generated module does not hold the constants it was rendered with")
