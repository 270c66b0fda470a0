"""``quayside registry ...``: register models, list and show them, move versions between stages, aliases, history."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from quayside.cli.console import format_time, out, print_json, styled
from quayside.cli.options import ActorOption, ReasonOption, registry_client
from quayside.errors import UsageError

app = typer.Typer(
    help="The model registry: versions, stages, aliases and their history.", no_args_is_help=True
)
alias_app = typer.Typer(help="Point aliases (champion, challenger, ...) at versions.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
slo_app = typer.Typer(help="Default SLOs that `quayside promote` gates on.", no_args_is_help=True)
app.add_typer(slo_app, name="slo")

STAGE_STYLE = {"production": "green", "staging": "cyan", "candidate": "", "archived": "dim"}

JsonOption = Annotated[bool, typer.Option("--json", help="Print JSON, for scripts.")]


def parse_pairs(option: str, pairs: Sequence[str] | None) -> dict[str, str]:
    values = {}
    for pair in pairs or ():
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"{option} takes key=value, not '{pair}'")
        values[key] = value
    return values


def _stage(stage: str, note: str = "") -> Text:
    return styled((stage, STAGE_STYLE.get(stage, "")), note)


@app.command()
def register(
    model: Annotated[
        str, typer.Argument(help="Package directory or model URI (runs:/RUN_ID/PATH, models:/...).")
    ],
    name: Annotated[str, typer.Option("--name", "-n", help="Registered model name.")],
    description: Annotated[str, typer.Option(help="Description of the model (when this creates it).")] = "",
    tag: Annotated[
        list[str] | None, typer.Option("--tag", "-t", help="Model tag key=value (repeatable).")
    ] = None,
    allow_multiple_production: Annotated[
        bool,
        typer.Option("--allow-multiple-production", help="Let several versions be in production at once."),
    ] = False,
    actor: ActorOption = None,
    reason: ReasonOption = "",
    as_json: JsonOption = False,
) -> None:
    """Register a package as the next version of NAME (created on first use); it starts as candidate."""
    version = registry_client().register_model(
        model,
        name,
        model_description=description or None,
        tags=parse_pairs("--tag", tag),
        allow_multiple_production=True if allow_multiple_production else None,
        actor=actor,
        reason=reason,
    )
    if as_json:
        print_json(version.to_dict())
        return
    out.print(
        styled(
            "registered ",
            (version.name, "bold"),
            f" version {version.version} ({version.flavor}, ",
            _stage(version.stage),
            f") sha256:{version.digest[:12]}…  {version.uri}",
        )
    )


@app.command("list")
def list_models(as_json: JsonOption = False) -> None:
    """List registered models."""
    models = registry_client().list_models()
    if as_json:
        print_json([m.to_dict() for m in models])
        return
    if not models:
        out.print("no registered models")
        return
    table = Table("name", "latest version", "aliases", "updated", "description")
    for model in models:
        aliases = ", ".join(f"{a}→{v}" for a, v in model.aliases.items()) or "-"
        table.add_row(
            model.name, str(model.latest_version), aliases, format_time(model.updated_at), model.description
        )
    out.print(table)


@app.command()
def show(
    name: Annotated[str, typer.Argument(help="Registered model name.")], as_json: JsonOption = False
) -> None:
    """Show a model: description, tags, aliases and its live versions."""
    client = registry_client()
    model = client.get_model(name)
    versions = client.list_versions(name)
    if as_json:
        print_json(model.to_dict() | {"versions": [v.to_dict() for v in versions]})
        return
    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="dim")
    summary.add_column()
    for label, value in (
        ("model", model.name),
        ("description", model.description or "-"),
        ("tags", ", ".join(f"{k}={v}" for k, v in model.tags.items()) or "-"),
        ("aliases", ", ".join(f"{a} → {v}" for a, v in model.aliases.items()) or "-"),
        (
            "production",
            "several versions allowed" if model.allow_multiple_production else "one version at a time",
        ),
        ("created", format_time(model.created_at)),
    ):
        summary.add_row(label, value)
    out.print(summary)
    _versions_table(versions)


def _versions_table(versions: Sequence[Any]) -> None:
    if not versions:
        out.print("no versions")
        return
    table = Table("version", "stage", "aliases", "flavor", "onnx", "source run", "digest", "registered")
    for v in versions:
        stage = _stage(v.stage, " (deleted)" if v.deleted else "")
        table.add_row(
            str(v.version),
            stage,
            ", ".join(v.aliases) or "-",
            v.flavor,
            "yes" if v.onnx_servable else "no",
            v.source_run_id or "-",
            v.digest[:12],
            format_time(v.created_at),
        )
    out.print(table)


@app.command()
def versions(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    include_deleted: Annotated[bool, typer.Option("--all", help="Include deleted versions.")] = False,
    as_json: JsonOption = False,
) -> None:
    """List a model's versions with their stages, aliases and lineage."""
    found = registry_client().list_versions(name, include_deleted=include_deleted)
    if as_json:
        print_json([v.to_dict() for v in found])
        return
    _versions_table(found)


@app.command()
def transition(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    to: Annotated[str, typer.Option("--to", help="Stage: candidate, staging, production or archived.")],
    reason: ReasonOption = "",
    actor: ActorOption = None,
    evidence: Annotated[
        list[str] | None,
        typer.Option("--evidence", "-e", help="key=value kept in the audit log (repeatable)."),
    ] = None,
    keep_previous: Annotated[
        bool, typer.Option("--keep-previous", help="Keep the current production version(s) when promoting.")
    ] = False,
    as_json: JsonOption = False,
) -> None:
    """Move a version to another stage (promoting archives the current production version)."""
    moved = registry_client().transition(
        name,
        version,
        to,
        reason=reason,
        actor=actor,
        evidence=parse_pairs("--evidence", evidence),
        keep_previous=keep_previous,
    )
    if as_json:
        print_json(moved.to_dict())
        return
    out.print(styled(f"{moved.name} version {moved.version} is now in ", _stage(moved.stage)))


@app.command()
def delete(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    reason: ReasonOption = "",
    actor: ActorOption = None,
) -> None:
    """Delete a version (soft: its number is never reused; a production version cannot be deleted)."""
    deleted = registry_client().delete_version(name, version, actor=actor, reason=reason)
    out.print(f"deleted {deleted.name} version {deleted.version}")


@app.command()
def history(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int | None, typer.Option("--version", "-v", help="Only this version.", min=1)] = None,
    as_json: JsonOption = False,
) -> None:
    """The model's audit log: every registration, transition and alias move, who made it, when and why."""
    entries = registry_client().history(name, version)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    table = Table("when", "version", "action", "from", "to", "actor", "reason", "evidence")
    for entry in entries:
        action = entry.action if entry.alias is None else f"{entry.action} {entry.alias}"
        table.add_row(
            format_time(entry.timestamp),
            "-" if entry.version is None else str(entry.version),
            action,
            entry.from_value or "-",
            entry.to_value or "-",
            entry.actor,
            entry.reason or "-",
            ", ".join(f"{k}={v}" for k, v in entry.evidence.items()) or "-",
        )
    out.print(table)


@alias_app.command("set")
def set_alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. champion.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    reason: ReasonOption = "",
    actor: ActorOption = None,
    evidence: Annotated[
        list[str] | None,
        typer.Option("--evidence", "-e", help="key=value kept in the audit log (repeatable)."),
    ] = None,
) -> None:
    """Point ALIAS at VERSION (creating or moving it)."""
    moved = registry_client().set_alias(
        name, alias, version, actor=actor, reason=reason, evidence=parse_pairs("--evidence", evidence)
    )
    out.print(f"models:/{moved.name}@{alias} → version {moved.version}")


@alias_app.command("delete")
def delete_alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Argument(help="Alias to remove.")],
    reason: ReasonOption = "",
    actor: ActorOption = None,
) -> None:
    """Remove an alias."""
    registry_client().delete_alias(name, alias, actor=actor, reason=reason)
    out.print(f"deleted alias '{alias}' of {name}")


@slo_app.command("set")
def set_slo(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    slo: Annotated[str, typer.Argument(help="Objectives, e.g. 'p95_ms<=25,p99_ms<=60,error_rate<=0.001'.")],
) -> None:
    """Set the SLO `quayside promote NAME VERSION` uses when --slo is omitted (kept as a model tag)."""
    from quayside.slo import DEFAULT_SLO_TAG, parse_slo

    objectives = parse_slo(slo)
    text = ",".join(str(o) for o in objectives)
    registry_client().update_model(name, tags={DEFAULT_SLO_TAG: text})
    out.print(f"default SLO of '{name}': {text}")


@slo_app.command("show")
def show_slo(name: Annotated[str, typer.Argument(help="Registered model name.")]) -> None:
    """Print the model's default SLO."""
    from quayside.slo import DEFAULT_SLO_TAG

    text = registry_client().get_model(name).tags.get(DEFAULT_SLO_TAG)
    if not text:
        raise UsageError(
            f"model '{name}' has no default SLO; set one with: quayside registry slo set {name} '...'"
        )
    out.print(text)
