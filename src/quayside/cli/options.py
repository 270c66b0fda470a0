"""What several command modules take alike: shared options, and the clients built from the settings.

Command modules do not import one another (an import contract says so); what two
of them share lives here or in :mod:`quayside.cli.console` and :mod:`quayside.cli.tables`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated

import typer

from quayside.config import load_settings

if TYPE_CHECKING:
    from quayside.compose.clients import RegistryClient
    from quayside.tracking.client import Client

ActorOption = Annotated[
    str | None,
    typer.Option("--actor", help="Who the audit log names (default: QUAYSIDE_ACTOR, then the OS user)."),
]
ReasonOption = Annotated[str, typer.Option("--reason", "-r", help="Why; kept in the audit log.")]


def registry_client() -> RegistryClient:
    """The registry of the configured store or server (``runs:/`` URIs resolve through tracking)."""
    from quayside.compose.clients import RegistryClient

    return RegistryClient(settings=load_settings())


def tracking_client() -> Client:
    """The tracking client of the configured store or server."""
    from quayside.tracking.client import Client

    return Client(settings=load_settings())
