"""Where the load-test reports of registered versions lie, and reading them back.

``quayside promote`` load-tests a version and keeps the report beside the registry's
package copies, one folder per report::

    ARTIFACT_ROOT/loadtests/NAME/VERSION/REPORT_ID/report.json   (and report.html, server.log)

``NAME`` is :func:`quayside.names.path_component` of the model name, which is the
name itself for every valid registered name (they are portable file names), so
reports written before that function existed are where they always were.

This module is the one place that knows that layout: the promotion gate asks it where
to write, and the server lists and reads reports through it for the API and the web UI.
The report document itself is written by :mod:`quayside.loadtesting.report`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from quayside.errors import NotFoundError, UsageError
from quayside.names import check_model_name, path_component
from quayside.registry.entities import check_version

LOADTESTS_DIR = "loadtests"
REPORT_JSON = "report.json"
"""The name :func:`quayside.loadtesting.report.write_report` gives the JSON document (a test pins it)."""
REPORT_HTML = "report.html"
"""The name it gives the self-contained HTML report (pinned by the same test)."""
REPORT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")


@dataclass(frozen=True)
class ReportSummary:
    """One stored report, as a list shows it: when it ran, whether it met its SLO, and its numbers."""

    id: str
    started_at: float | None
    passed: bool | None
    summary: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "started_at": self.started_at,
            "passed": self.passed,
            "summary": dict(self.summary),
        }


def check_report_id(report_id: str) -> str:
    if not isinstance(report_id, str) or not REPORT_ID_PATTERN.fullmatch(report_id):
        raise UsageError(f"report id {report_id!r} is invalid: use 1 to 64 letters, digits, '_' and '-'")
    return report_id


def version_dir(artifact_root: Path, name: str, version: int) -> Path:
    """The folder holding every report of one version."""
    return (
        artifact_root / LOADTESTS_DIR / path_component(check_model_name(name)) / str(check_version(version))
    )


def report_dir(artifact_root: Path, name: str, version: int, report_id: str) -> Path:
    """The folder of one report (where the promotion gate writes it)."""
    return version_dir(artifact_root, name, version) / check_report_id(report_id)


def read_report(artifact_root: Path, name: str, version: int, report_id: str) -> dict[str, Any]:
    """One report's JSON document; :class:`NotFoundError` when there is no such report."""
    path = report_dir(artifact_root, name, version, report_id) / REPORT_JSON
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise NotFoundError(
            f"model '{name}' version {version} has no load-test report '{report_id}'"
        ) from None
    except (OSError, ValueError) as e:
        raise NotFoundError(
            f"load-test report '{report_id}' of model '{name}' version {version} is unreadable: {e}"
        ) from None


def report_html(artifact_root: Path, name: str, version: int, report_id: str) -> Path:
    """The path of one report's HTML page; :class:`NotFoundError` when it has none."""
    path = report_dir(artifact_root, name, version, report_id) / REPORT_HTML
    if not path.is_file():
        raise NotFoundError(f"model '{name}' version {version} has no HTML load-test report '{report_id}'")
    return path


def list_reports(artifact_root: Path, name: str, version: int) -> list[ReportSummary]:
    """The version's reports, newest first; folders without a readable report (a run cut short) are left out."""
    directory = version_dir(artifact_root, name, version)
    if not directory.is_dir():
        return []
    summaries = []
    for child in directory.iterdir():
        if not REPORT_ID_PATTERN.fullmatch(child.name) or not (child / REPORT_JSON).is_file():
            continue
        try:
            report = json.loads((child / REPORT_JSON).read_text())
        except (OSError, ValueError):
            continue
        verdict = report.get("verdict") or {}
        summaries.append(
            ReportSummary(
                id=child.name,
                started_at=report.get("started_at"),
                passed=verdict.get("passed"),
                summary=report.get("summary") or {},
            )
        )
    return sorted(summaries, key=lambda s: s.started_at or 0.0, reverse=True)
