"""``quayside registry ...``: register models, list and show them, move versions between stages, aliases,
history, the promotion policy and build budget, and the load-test reports and build records the registry holds."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from quayside.cli.console import format_time, out, print_json, styled
from quayside.cli.options import ActorOption, ReasonOption, registry_client
from quayside.cli.tables import print_judgement, print_summary
from quayside.errors import UsageError

if TYPE_CHECKING:
    from quayside.compose.clients import RegistryClient
    from quayside.registry.builds import BuildRecord
    from quayside.registry.entities import AuditEntry
    from quayside.registry.loadtests import LoadTestReport
    from quayside.registry.policy import PromotionPolicy

app = typer.Typer(
    help="The model registry: versions, stages, aliases, their history, promotion policies and load-test reports.",
    no_args_is_help=True,
)
alias_app = typer.Typer(help="Point aliases (champion, challenger, ...) at versions.", no_args_is_help=True)
app.add_typer(alias_app, name="alias")
policy_app = typer.Typer(
    help="The promotion policy: what a version must show before it enters a protected stage or alias.",
    no_args_is_help=True,
)
app.add_typer(policy_app, name="policy")
budget_app = typer.Typer(
    help="The build budget: bounds on a built image's size, cold start and first inference.",
    no_args_is_help=True,
)
app.add_typer(budget_app, name="budget")

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


OverrideOption = Annotated[
    bool,
    typer.Option(
        "--override",
        help="Move past the promotion policy without a qualifying load test (admins only; needs --reason).",
    ),
]


def _check_override(override: bool, reason: str) -> None:
    if override and not reason.strip():
        raise UsageError("--override needs --reason TEXT: the audit log keeps why the policy was overridden")


def _overridden(client: RegistryClient, name: str, version: int, action: str) -> bool:
    """Whether the move just made went past the policy (an unprotected move overrides nothing)."""
    entries = client.history(name, version)
    return bool(entries) and entries[-1].action == action and entries[-1].override


@app.command()
def transition(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    to: Annotated[str, typer.Option("--to", help="Stage: candidate, staging, production or archived.")],
    reason: ReasonOption = "",
    actor: ActorOption = None,
    keep_previous: Annotated[
        bool, typer.Option("--keep-previous", help="Keep the current production version(s) when promoting.")
    ] = False,
    override: OverrideOption = False,
    as_json: JsonOption = False,
) -> None:
    """Move a version to another stage (promoting archives the current production version).

    A stage the model's promotion policy protects (production by default) needs a qualifying
    load test of the version: quayside promote NAME VERSION runs one and moves it.
    """
    _check_override(override, reason)
    client = registry_client()
    moved = client.transition(
        name, version, to, reason=reason, actor=actor, keep_previous=keep_previous, override=override
    )
    if as_json:
        print_json(moved.to_dict())
        return
    note = " (policy overridden)" if override and _overridden(client, name, version, "transition") else ""
    out.print(styled(f"{moved.name} version {moved.version} is now in ", _stage(moved.stage), note))


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
    """The model's audit log: every registration, transition, alias move and policy change, who made it, when and why."""
    entries = registry_client().history(name, version)
    if as_json:
        print_json([e.to_dict() for e in entries])
        return
    table = Table("when", "version", "action", "from", "to", "actor", "reason", "evidence")
    for entry in entries:
        action = styled(entry.action if entry.alias is None else f"{entry.action} {entry.alias}")
        if entry.override:
            action.append_text(styled((" (override)", "red")))
        table.add_row(
            format_time(entry.timestamp),
            "-" if entry.version is None else str(entry.version),
            action,
            entry.from_value or "-",
            entry.to_value or "-",
            entry.actor,
            entry.reason or "-",
            _evidence(entry),
        )
    out.print(table)


def _evidence(entry: AuditEntry) -> str:
    """The entry's evidence in a few words: the report that cleared a move, or what a policy change changed."""
    evidence = entry.evidence
    if entry.action == "policy_set":
        before, after = evidence.get("before") or {}, evidence.get("after") or {}
        changed = [key for key in after if before.get(key) != after.get(key)]
        return f"changed: {', '.join(changed)}" if changed else "changed: nothing"
    if "loadtest_report" in evidence:
        text = f"loadtest_report={evidence['loadtest_report']}, slo={evidence.get('slo') or '-'}"
        build = evidence.get("build")
        return text + (f", build={build.get('id')}" if isinstance(build, Mapping) else "")
    if entry.override:
        return f"slo={evidence.get('slo') or '-'}"
    return ", ".join(f"{key}={_short(value)}" for key, value in evidence.items()) or "-"


def _short(value: Any, limit: int = 40) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@alias_app.command("set")
def set_alias(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    alias: Annotated[str, typer.Argument(help="Alias, e.g. champion.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    reason: ReasonOption = "",
    actor: ActorOption = None,
    override: OverrideOption = False,
) -> None:
    """Point ALIAS at VERSION (creating or moving it).

    An alias the model's promotion policy protects needs a qualifying load test of the
    version: quayside promote NAME VERSION --alias ALIAS runs one and moves it.
    """
    _check_override(override, reason)
    client = registry_client()
    moved = client.set_alias(name, alias, version, actor=actor, reason=reason, override=override)
    note = " (policy overridden)" if override and _overridden(client, name, version, "alias_set") else ""
    out.print(f"models:/{moved.name}@{alias} → version {moved.version}{note}")


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


# --- the promotion policy ---------------------------------------------------------------------------

_DAYS = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*d\s*$")
_ZERO = re.compile(r"^\s*0+(?:\.0*)?\s*(?:ms|s|m|h|d)?\s*$")


def parse_period(option: str, text: str, *, zero: bool = False) -> float:
    """Seconds in ``7d``, ``12h``, ``30m``, ``45s``, ``500ms`` or a plain number; ``0`` only where ``zero``."""
    from quayside.compose.loadtest import parse_duration
    from quayside.registry.policy import DAY_S

    if zero and _ZERO.match(text):
        return 0.0
    days = _DAYS.match(text)
    if days is not None and float(days.group(1)) > 0:
        return float(days.group(1)) * DAY_S
    try:
        return parse_duration(text)
    except UsageError:
        raise UsageError(
            f"{option} '{text}' is not a duration like 7d, 12h, 30m, 45s or a number of seconds"
        ) from None


def _names(text: str | None) -> list[str] | None:
    """A comma list as names (None: not given; an empty string: none)."""
    if text is None:
        return None
    return [part.strip() for part in text.split(",") if part.strip()]


def _print_policy(name: str, policy: PromotionPolicy) -> None:
    from quayside.registry.policy import format_age

    updated = "- (the default policy)"
    if policy.updated_at is not None:
        updated = f"{format_time(policy.updated_at)} by {policy.updated_by or '-'}"
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="dim")
    grid.add_column()
    for label, value in (
        ("model", name),
        ("protected stages", ", ".join(policy.protected_stages) or "- (none)"),
        ("protected aliases", ", ".join(policy.protected_aliases) or "- (none)"),
        ("SLO", policy.slo or "- (none: no version can enter a protected stage or alias yet)"),
        ("max report age", format_age(policy.max_report_age_s)),
        ("minimum users", str(policy.min_users)),
        ("minimum duration", f"{policy.min_duration_s:g} s"),
        ("require image", "yes (a load test of the built image)" if policy.require_image else "no"),
        ("budget", policy.budget or "- (none: a build is held to no bounds)"),
        ("require build", f"yes ({policy.build_requirement()})" if policy.require_build else "no"),
        ("updated", updated),
    ):
        grid.add_row(label, value)
    out.print(grid)


@policy_app.command("show")
def show_policy(
    name: Annotated[str, typer.Argument(help="Registered model name.")], as_json: JsonOption = False
) -> None:
    """Print the model's promotion policy."""
    policy = registry_client().get_policy(name)
    if as_json:
        print_json(policy.to_dict())
        return
    _print_policy(name, policy)


@policy_app.command("set")
def set_policy(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    slo: Annotated[
        str | None,
        typer.Option(
            "--slo", help="Objectives a load test must meet, e.g. 'p95_ms<=25,error_rate<=0.001' ('' clears)."
        ),
    ] = None,
    protect_stages: Annotated[
        str | None,
        typer.Option(
            "--protect-stages",
            help="Comma list of stages that need a qualifying load test: staging, production ('' for none).",
        ),
    ] = None,
    protect_aliases: Annotated[
        str | None,
        typer.Option(
            "--protect-aliases", help="Comma list of aliases that need one, e.g. champion ('' for none)."
        ),
    ] = None,
    max_age: Annotated[
        str | None, typer.Option("--max-age", help="Oldest report that qualifies: 7d, 12h, 30m, 45s.")
    ] = None,
    min_users: Annotated[
        int | None, typer.Option("--min-users", help="Fewest simulated users a qualifying report ran.")
    ] = None,
    min_duration: Annotated[
        str | None, typer.Option("--min-duration", help="Shortest qualifying load test: 30s, 2m, 0.")
    ] = None,
    require_image: Annotated[
        bool | None,
        typer.Option(
            "--require-image/--no-require-image",
            help="Whether the report must come from the built image (quayside promote --image).",
            show_default=False,
        ),
    ] = None,
    budget: Annotated[
        str | None,
        typer.Option(
            "--budget",
            help="Bounds a build must meet, e.g. 'image_mb<=200,cold_start_s<=3' ('' clears).",
            show_default=False,
        ),
    ] = None,
    require_build: Annotated[
        bool | None,
        typer.Option(
            "--require-build/--no-require-build",
            help="Whether a protected move also needs a passing build (quayside build: smoke test "
            "passed, within the budget).",
            show_default=False,
        ),
    ] = None,
    reason: ReasonOption = "",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Change the model's promotion policy (the options given; the rest stay as they are).

    A comma list replaces the whole list. Every change is kept in the model's history.
    """
    max_age_s = None if max_age is None else parse_period("--max-age", max_age)
    min_duration_s = None if min_duration is None else parse_period("--min-duration", min_duration, zero=True)
    changes: dict[str, Any] = {
        "slo": slo,
        "protected_stages": _names(protect_stages),
        "protected_aliases": _names(protect_aliases),
        "max_report_age_s": max_age_s,
        "min_users": min_users,
        "min_duration_s": min_duration_s,
        "require_image": require_image,
        "budget": budget,
        "require_build": require_build,
    }
    if all(value is None for value in changes.values()):
        raise UsageError(
            "nothing to change: give at least one of --slo, --protect-stages, --protect-aliases, --max-age, "
            "--min-users, --min-duration, --require-image/--no-require-image, --budget, "
            "--require-build/--no-require-build"
        )
    if min_users is not None and min_users < 1:
        raise UsageError(f"--min-users must be at least 1, not {min_users}")
    policy = registry_client().set_policy(name, actor=actor, reason=reason, **changes)
    if as_json:
        print_json(policy.to_dict())
        return
    _print_policy(name, policy)


# --- load-test reports ------------------------------------------------------------------------------


def _tested(tested: Mapping[str, Any]) -> str:
    kind = str(tested.get("kind", "package"))
    if kind == "image":
        return f"image {tested.get('image') or str(tested.get('image_id') or '')[:19] or '?'}"
    if kind == "server":
        return f"server {tested.get('url') or '?'}"
    return f"package {str(tested.get('package_digest') or '')[:12]}"


def _milliseconds(value: Any) -> str:
    return "-" if value is None else f"{value:.1f} ms"


def _verdict(report: LoadTestReport) -> Text:
    if report.passed is None:
        return styled("-")
    return styled(("met", "green")) if report.passed else styled(("missed", "red"))


def _qualifies(report: LoadTestReport) -> Text:
    if report.judgement is None:
        return styled("-")
    if report.judgement.qualifies:
        return styled(("yes", "green"))
    return styled("; ".join(report.judgement.problems))


@app.command()
def reports(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    as_json: JsonOption = False,
) -> None:
    """A version's load-test reports, newest first, judged by the registry against the policy in force now."""
    found = registry_client().loadtest_reports(name, version)
    if as_json:
        print_json([r.to_dict() for r in found])
        return
    if not found:
        out.print(
            f"no load-test reports for version {version} of '{name}': run quayside promote {name} {version}, "
            f"or quayside loadtest models:/{name}/{version} --register {name} {version}"
        )
        return
    table = Table(
        "id", "started", "tested", "users", "duration", "rps", "p95", "error rate", "verdict", "qualifies"
    )
    for report in found:
        summary = report.summary
        table.add_row(
            report.id,
            format_time(report.started_at),
            _tested(report.tested),
            str(report.users),
            f"{report.duration_s:g} s",
            f"{summary.get('rps', 0):.1f}",
            _milliseconds(summary.get("p95_ms")),
            f"{summary.get('error_rate', 0):.2%}",
            _verdict(report),
            _qualifies(report),
        )
    out.print(table)


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    report_id: Annotated[str, typer.Argument(help="Report id (quayside registry reports NAME VERSION).")],
    html: Annotated[
        Path | None,
        typer.Option("--html", help="Write the report's HTML page (charts, offline) to this file."),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """One load-test report: what was tested, its figures and the registry's verdict on them now."""
    from quayside.registry.loadtests import LoadTestReport

    client = registry_client()
    if html is not None:
        html.write_text(client.loadtest_report_page(name, version, report_id))
        out.print(f"wrote the HTML page of report {report_id} to {html}")
        return
    document = client.loadtest_report(name, version, report_id)
    if as_json:
        print_json(document)
        return
    record = LoadTestReport.from_dict(document["record"])
    out.print(
        styled(
            "report ",
            (record.id, "bold"),
            f" of models:/{record.model}/{record.version}: {_tested(record.tested)}, "
            f"{record.users} users for {record.duration_s:g} s, started {format_time(record.started_at)}, "
            f"uploaded by {record.uploaded_by} at {format_time(record.uploaded_at)}",
        )
    )
    print_summary(document)
    print_judgement(record)


# --- the build budget and build records ---------------------------------------------------------------


def _print_budget(name: str, policy: PromotionPolicy) -> None:
    if policy.budget is None:
        out.print(
            f"model '{name}' has no build budget: set one with quayside registry budget set {name} 'image_mb<=200'"
        )
    else:
        out.print(f"budget of '{name}': {policy.budget}")
    if policy.require_build:
        out.print(f"a protected stage or alias needs a passing build ({policy.build_requirement()})")
    else:
        out.print(
            "a protected stage or alias does not need a passing build; require one with "
            f"quayside registry policy set {name} --require-build"
        )


@budget_app.command("show")
def show_budget(
    name: Annotated[str, typer.Argument(help="Registered model name.")], as_json: JsonOption = False
) -> None:
    """Print the model's build budget, and whether a protected move needs a passing build."""
    policy = registry_client().get_policy(name)
    if as_json:
        print_json({"budget": policy.budget, "require_build": policy.require_build})
        return
    _print_budget(name, policy)


@budget_app.command("set")
def set_budget(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    budget: Annotated[str, typer.Argument(help="Bounds, e.g. 'image_mb<=200,cold_start_s<=3' ('' clears).")],
    reason: ReasonOption = "",
    actor: ActorOption = None,
    as_json: JsonOption = False,
) -> None:
    """Set the model's build budget: quayside build holds images to it, and a passing build meets it.

    Metrics: image_mb (10^6 bytes), cold_start_s, first_inference_ms. The change is kept in
    the model's history.
    """
    policy = registry_client().set_policy(name, budget=budget, actor=actor, reason=reason)
    if as_json:
        print_json({"budget": policy.budget, "require_build": policy.require_build})
        return
    _print_budget(name, policy)


def _seconds(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f} s"


def _smoke(build: BuildRecord) -> Text:
    style = {"passed": "green", "failed": "red"}.get(build.smoke, "dim")
    return styled((build.smoke, style))


def _build_verdict(build: BuildRecord) -> Text:
    if build.judgement is None:
        return styled("-")
    if build.judgement.qualifies:
        return styled(("pass", "green"))
    return styled("; ".join(build.judgement.problems))


@app.command()
def builds(
    name: Annotated[str, typer.Argument(help="Registered model name.")],
    version: Annotated[int, typer.Argument(help="Version number.", min=1)],
    as_json: JsonOption = False,
) -> None:
    """A version's build records, newest first, judged by the registry against the budget in force now."""
    found = registry_client().build_records(name, version)
    if as_json:
        print_json([b.to_dict() for b in found])
        return
    if not found:
        out.print(
            f"no builds recorded for version {version} of '{name}': run quayside build models:/{name}/{version}"
        )
        return
    table = Table("id", "built", "image", "size", "cold start", "first inference", "smoke", "verdict")
    for build in found:
        table.add_row(
            build.id,
            format_time(build.built_at),
            build.reference,
            f"{build.size_bytes / 1e6:.1f} MB",
            _seconds(build.cold_start_s),
            _milliseconds(build.first_inference_ms),
            _smoke(build),
            _build_verdict(build),
        )
    out.print(table)
