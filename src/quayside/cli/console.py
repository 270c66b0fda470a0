"""Where the CLI prints: results to stdout, progress and errors to stderr.

Nothing the CLI prints is read as markup. Both consoles have Rich markup and emoji
codes off, so a name such as ``[bold]x[/bold]``, ``in6d[/]`` or ``:smile:`` prints as
typed, in a message, a table cell or a title alike; and every string they render has
its control characters shown as escapes (``\\x1b``), so no value can drive the
terminal. Styling is explicit: :func:`styled` builds a Rich ``Text`` from plain and
``(text, style)`` parts. Machine output (JSON, YAML, generated files) does not go
through Rich at all: :func:`out_raw` and :func:`print_json` write it to stdout as is.
"""

from __future__ import annotations

import json
import re
import sys
from datetime import datetime
from typing import Any

from rich.console import Console
from rich.text import Text

# C0 and C1 controls but tab and newline, DEL, and the bidirectional overrides and isolates
# (which reorder what follows them on screen).
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")


def visible(text: str) -> str:
    """``text`` with each character that a terminal would act on shown as an escape (``\\x1b``)."""
    return _UNSAFE.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)


class _LiteralConsole(Console):
    """A Console that shows every string it renders literally (see the module docstring)."""

    def __init__(self, **options: Any) -> None:
        super().__init__(markup=False, emoji=False, highlight=False, soft_wrap=True, **options)

    def render_str(self, text: str, **options: Any) -> Text:
        # Every plain string passes here: print() arguments, table cells, headers and titles.
        return super().render_str(visible(text), **options)


out = _LiteralConsole()
err = _LiteralConsole(stderr=True)


def styled(*parts: str | tuple[str, str] | Text) -> Text:
    """Text from parts, each shown literally: a string, ``(string, style)``, or Text made here."""
    text = Text()
    for part in parts:
        if isinstance(part, Text):
            text.append_text(part)
            continue
        value, style = (part, "") if isinstance(part, str) else part
        text.append(visible(value), style=style)
    return text


def out_raw(text: str) -> None:
    """Machine output (YAML, a generated file) to stdout exactly as given, ending in a newline."""
    sys.stdout.write(text if text.endswith("\n") else text + "\n")
    sys.stdout.flush()


def print_json(value: Any) -> None:
    """``value`` as indented JSON on stdout, for scripts."""
    out_raw(json.dumps(value, indent=2, ensure_ascii=False, default=str))


def human_size(size: float) -> str:
    """Bytes in the largest unit that keeps the number readable (``1.4 MiB``)."""
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def format_time(ms: int | None) -> str:
    """Milliseconds since the epoch as local ``YYYY-MM-DD HH:MM:SS`` (``-`` for none)."""
    return "-" if ms is None else datetime.fromtimestamp(ms / 1000).strftime("%Y-%m-%d %H:%M:%S")
