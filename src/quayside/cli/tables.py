"""Tables and summary lines that more than one command prints: ONNX parity, load tests, SLO verdicts,
the registry's judgement of a stored report, builds."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from rich.table import Table

from quayside.cli.console import human_size, out, styled

if TYPE_CHECKING:
    from quayside.compose.images import CheckedBuild
    from quayside.packager.docker.build import BuildResult
    from quayside.registry.loadtests import LoadTestReport


def _number(value: Any) -> str:
    return "-" if value is None else f"{value:.3g}"


def parity_table(parity: Mapping[str, Any]) -> Table:
    """ONNX-versus-native parity per output, with the tolerance it was held to."""
    table = Table(
        title=f"ONNX parity on {parity.get('rows')} rows (rtol={parity.get('rtol')}, atol={parity.get('atol')})",
        title_justify="left",
    )
    for column in ("output", "max abs diff", "max rel diff", "label agreement", "result"):
        table.add_column(column)
    for name, result in (parity.get("outputs") or {}).items():
        agreement = result.get("label_agreement")
        table.add_row(
            name,
            _number(result.get("max_abs_diff")),
            _number(result.get("max_rel_diff")),
            "-" if agreement is None else f"{agreement:.2%}",
            styled(("pass", "green")) if result.get("passed") else styled(("fail", "red")),
        )
    return table


def print_verdict(verdict: Any, title: str = "SLO verdict") -> None:
    """The SLO verdict: one row per objective, then whether all were met."""
    table = Table(title=title, title_justify="left")
    for column in ("objective", "measured", "required", "result"):
        table.add_column(column)
    for result in verdict.results:
        measured = "-" if result.measured != result.measured else f"{result.measured:.4g}"
        objective = result.objective
        table.add_row(
            objective.metric,
            measured,
            f"{objective.comparison} {objective.threshold:g}",
            styled(("pass", "green")) if result.passed else styled(("FAIL", "red")),
        )
    out.print(table)
    out.print(styled(("all objectives met", "green")) if verdict.passed else styled(("SLO not met", "red")))


def print_summary(report: Mapping[str, Any]) -> None:
    """A load-test report's figures in one line, then its errors by type."""
    s = report["summary"]

    def ms(key: str) -> str:
        return "-" if s[key] is None else f"{s[key]:.1f}"

    out.print(
        f"{s['requests']} requests, {s['failures']} failures ({s['error_rate']:.2%}), {s['rps']:.1f} req/s; "
        f"latency ms p50 {ms('p50_ms')} p90 {ms('p90_ms')} p95 {ms('p95_ms')} p99 {ms('p99_ms')} max {ms('max_ms')}"
    )
    for error in report.get("errors") or ():
        out.print(styled("  ", (f"{error['count']} × {error['type']}", "red")))


def print_judgement(report: LoadTestReport) -> None:
    """The registry's verdict on a stored report, and whether it clears a protected stage or alias now."""
    judgement = report.judgement
    if judgement is None:
        out.print(f"report {report.id} has not been judged")
        return
    if judgement.verdict is not None:
        print_verdict(judgement.verdict, title=f"registry's verdict on report {report.id}")
    if judgement.qualifies:
        out.print(styled(("qualifies", "green"), " for a protected stage or alias under the policy in force"))
        return
    out.print(
        styled(
            ("does not qualify", "yellow"), " for a protected stage or alias: ", "; ".join(judgement.problems)
        )
    )


def print_build(result: BuildResult, base_image: str) -> None:
    """The built image's tag, id, size above its base, and how many steps came from the cache."""
    cached = sum(1 for _, hit in result.steps if hit)
    out.print(f"built {result.tag} ({result.image_id.removeprefix('sha256:')[:12]})")
    out.print(
        f"image size {human_size(result.size)}, {human_size(result.size_above_base)} above the base "
        f"image {base_image} ({human_size(result.base_size)}); {cached}/{len(result.steps)} steps from cache"
    )


def print_checked_build(checked: CheckedBuild) -> None:
    """The smoke test's figures, the budget's verdict, the push and the build record, a line each."""
    smoke = checked.smoke
    if smoke is None:
        out.print("smoke test skipped (--no-smoke)")
    else:
        first = "-" if smoke.first_inference_ms is None else f"{smoke.first_inference_ms:.1f} ms"
        out.print(
            f"smoke test passed: cold start {smoke.cold_start_s:.2f} s, first inference {first}; {smoke.detail}"
        )
    if checked.verdict is not None:
        figures = ", ".join(
            f"{r.objective.metric} {r.measured:.4g} ({r.objective})" for r in checked.verdict.results
        )
        out.print(f"within budget: {figures}")
    if checked.repo_digest is not None:
        out.print(f"pushed {checked.repo_digest}")
    if checked.record is not None:
        out.print(
            f"recorded build {checked.record.id} of {checked.record.model} version {checked.record.version} "
            f"(quayside registry builds {checked.record.model} {checked.record.version})"
        )
    else:
        out.print("not a registered version (build models:/NAME/VERSION to record it): no build record")
