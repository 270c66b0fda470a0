"""``quayside gc [--delete]``: list (and remove) the artifacts no database row refers to.

A dry run by default: it prints each unreferenced object with its size, then one summary
line (how many, how many bytes). ``--delete`` removes them. The logic is
:func:`quayside.compose.gc.collect_garbage`; it runs on the database and artifact root the
settings name (``QUAYSIDE_DB_URL``, ``QUAYSIDE_ARTIFACT_ROOT``), never through a server.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Annotated

import typer

from quayside.cli.console import human_size, out
from quayside.config import load_settings

DEFAULT_MIN_AGE_S = 3600.0


def gc(
    delete: Annotated[
        bool, typer.Option("--delete", help="Remove what is found (default: only list it).")
    ] = False,
    min_age: Annotated[
        float,
        typer.Option(
            "--min-age",
            min=0,
            help="Seconds an unreferenced object must have existed to count (a writer inserts its row "
            "just after its objects).",
        ),
    ] = DEFAULT_MIN_AGE_S,
) -> None:
    """List the artifact root's objects that no row refers to (package copies and reports without a
    version or report, artifacts of runs that do not exist, what dead writers left); --delete removes them."""
    from quayside.compose.gc import collect_garbage

    garbage = collect_garbage(load_settings(), delete=delete, min_age=timedelta(seconds=min_age))
    for kind, found in (("orphan", garbage.orphans), ("temporary", garbage.temporary)):
        for info in found:
            out.print(f"{'removed' if garbage.deleted else kind} {info.key} ({human_size(info.size)})")
    out.print(garbage.summary())
