"""The promotion gate: a registered version is served, load-tested, and moved only if every objective passes.

The version is served here (``quayside serve models:/NAME/VERSION``, or its built
image with ``image=``), load-tested, and its report stored in the artifact store
beside the registry's package copies (the layout is :mod:`quayside.registry.loadtests`'s).
Only when every objective passes does the version move; the audit entry's evidence
names the report. Otherwise stages and aliases stay as they were.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.loadtest import package_inputs, run_and_report, served_image, served_locally
from quayside.errors import UsageError

if TYPE_CHECKING:
    from rich.console import Console

    from quayside.compose.clients import RegistryClient
    from quayside.loadtesting.runner import LoadOptions
    from quayside.loadtesting.slo import Verdict
    from quayside.registry.entities import ModelVersion


@dataclass(frozen=True)
class PromotionResult:
    """What the gate measured and decided.

    ``version`` is the version as it was before the gate; ``promoted`` is the version
    after its transition, or None when the SLO was not met and nothing moved.
    """

    version: ModelVersion
    slo: str
    report_id: str
    report: dict[str, Any]
    verdict: Verdict
    report_path: Path
    promoted: ModelVersion | None

    @property
    def passed(self) -> bool:
        """Whether every objective was met (and so the version moved)."""
        return self.verdict.passed


def promote(
    name: str,
    version: int,
    *,
    to: str = "production",
    slo: str | None = None,
    image: str | None = None,
    options: LoadOptions | None = None,
    rows: int = 1,
    protocol: str = "v2",
    trust: bool = False,
    actor: str | None = None,
    reason: str = "",
    client: RegistryClient | None = None,
    log: Log = no_log,
    console: Console | None = None,
) -> PromotionResult:
    """Load-test version ``version`` of ``name`` and move it to ``to`` only if every SLO objective passes.

    ``slo`` defaults to the model's own (``quayside registry slo set``); with neither, a
    :class:`~quayside.errors.UsageError`. ``image`` load-tests that built image
    (``docker run --network host``) instead of serving the package here. ``options``
    sets users, spawn rate and duration (default :class:`~quayside.loadtesting.runner.LoadOptions`).
    Progress lines go to ``log``; ``console`` shows the live load panel (default: stderr).
    """
    from quayside.compose.clients import RegistryClient
    from quayside.loadtesting.report import new_report_id
    from quayside.loadtesting.runner import LoadOptions
    from quayside.loadtesting.slo import DEFAULT_SLO_TAG, parse_slo
    from quayside.registry.loadtests import report_dir

    client = client or RegistryClient()
    options = options or LoadOptions()
    registered = client.get_version(name, version)
    slo_text = slo or client.get_model(name).tags.get(DEFAULT_SLO_TAG)
    if not slo_text:
        raise UsageError(
            f"no SLO for '{name}': pass --slo or set one with: quayside registry slo set {name} '...'"
        )
    objectives = parse_slo(slo_text)
    uri = registered.uri
    _, _, schema, example = package_inputs(uri, settings=client.settings)
    report_id = new_report_id()
    directory = report_dir(client.settings.artifact_dir, name, version, report_id)
    with contextlib.ExitStack() as stack:
        if image is not None:
            server = served_image(image, model_name=name, model_version=str(version))
        else:
            server = served_locally(
                uri, trust=trust, log_path=directory / "server.log", settings=client.settings, log=log
            )
        base_url = stack.enter_context(server)
        log(f"load-testing {uri} at {base_url} for {options.duration_s:g} s against: {slo_text}")
        run = run_and_report(
            base_url=base_url,
            model_name=name,
            schema=schema,
            example=example,
            protocol=protocol,
            rows=rows,
            options=options,
            objectives=objectives,
            out_dir=directory,
            report_id=report_id,
            console=console,
        )
    assert run.verdict is not None  # objectives were given
    promoted = None
    if run.verdict.passed:
        promoted = client.transition(
            name,
            version,
            to,
            reason=reason or f"load test {report_id} met {slo_text}",
            actor=actor,
            evidence={"loadtest_report": report_id, "report_path": str(run.json_path), "slo": slo_text},
        )
    return PromotionResult(
        version=registered,
        slo=slo_text,
        report_id=report_id,
        report=run.report,
        verdict=run.verdict,
        report_path=run.json_path,
        promoted=promoted,
    )
