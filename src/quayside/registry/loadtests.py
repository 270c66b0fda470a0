"""Load-test reports as registry records: the uploaded document checked, its files laid out, the record handed out.

A report arrives as the JSON document :func:`quayside.loadtesting.report.build_report`
writes (with ``tested``: what was load-tested, and ``generator``: the load generator's CPU
use) and its HTML page. :func:`check_document` keeps the figures the policy needs and
refuses a document without them; the derived figures (error rate, requests per second)
are computed here from the raw counts, and a ``verdict`` the client sent is dropped: the
registry judges the figures itself with the policy in force (:mod:`quayside.registry.policy`).

The files lie in the artifact store, one folder per report, both objects stored whole
(:class:`~quayside.artifacts.ArtifactStore`) before the row that points at them is
inserted, so a crash leaves at most objects no row names (``quayside gc`` finds them)::

    loadtests/NAME/VERSION/REPORT_ID/report.json   (and report.html)
"""

from __future__ import annotations

import io
import json
import math
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from quayside.artifacts import ArtifactStore
from quayside.errors import NotFoundError, PackageIntegrityError, UsageError
from quayside.names import check_model_name, path_component
from quayside.registry.artifacts import check_inside, remove_folder
from quayside.registry.entities import check_version
from quayside.registry.policy import Judgement, ReportFacts

LOADTESTS_DIR = "loadtests"
REPORT_JSON = "report.json"
"""The name :func:`quayside.loadtesting.report.write_report` gives the JSON document (a test pins it)."""
REPORT_HTML = "report.html"
"""The name it gives the self-contained HTML report (pinned by the same test)."""
REPORT_ID_PATTERN = re.compile(r"[A-Za-z0-9_\-]{1,64}")
DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")
TESTED_KINDS = ("package", "image", "server")
"""What a report can have load-tested: the package served here, its built image, or a running server."""
LATENCY_KEYS = ("p50_ms", "p90_ms", "p95_ms", "p99_ms", "max_ms", "mean_ms")
MAX_DOCUMENT_BYTES = 16 * 1024 * 1024
MAX_HTML_BYTES = 32 * 1024 * 1024


def new_report_id() -> str:
    return uuid.uuid4().hex[:16]


def check_report_id(report_id: str) -> str:
    if not isinstance(report_id, str) or not REPORT_ID_PATTERN.fullmatch(report_id):
        raise UsageError(f"report id {report_id!r} is invalid: use 1 to 64 letters, digits, '_' and '-'")
    return report_id


@dataclass(frozen=True)
class LoadTestReport:
    """One stored report: what was tested, the load shape, the figures, and how the policy in force judges it."""

    id: str
    model: str
    version: int
    package_digest: str
    tested: Mapping[str, Any]
    users: int
    duration_s: float
    started_at: int
    uploaded_at: int
    uploaded_by: str
    summary: Mapping[str, Any]
    judgement: Judgement | None = field(default=None, compare=False)

    @property
    def passed(self) -> bool | None:
        """Whether the figures meet the SLO in force (None without an SLO)."""
        if self.judgement is None or self.judgement.verdict is None:
            return None
        return self.judgement.verdict.passed

    def facts(self) -> ReportFacts:
        return ReportFacts(
            id=self.id,
            package_digest=self.package_digest,
            tested_kind=str(self.tested.get("kind", "package")),
            users=self.users,
            duration_s=self.duration_s,
            started_at=self.started_at,
            uploaded_at=self.uploaded_at,
            summary=self.summary,
        )

    def to_dict(self) -> dict[str, Any]:
        judged = self.judgement.to_dict() if self.judgement is not None else {}
        return {
            "id": self.id,
            "model": self.model,
            "version": self.version,
            "package_digest": self.package_digest,
            "tested": dict(self.tested),
            "users": self.users,
            "duration_s": self.duration_s,
            "started_at": self.started_at,
            "uploaded_at": self.uploaded_at,
            "uploaded_by": self.uploaded_by,
            "summary": dict(self.summary),
            "passed": self.passed,
            "verdict": judged.get("verdict"),
            "qualifies": judged.get("qualifies"),
            "problems": judged.get("problems", []),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoadTestReport:
        from quayside.slo import Objective, ObjectiveResult, Verdict

        judgement = None
        if data.get("qualifies") is not None:
            verdict = None
            if data.get("verdict"):
                verdict = Verdict(
                    tuple(
                        ObjectiveResult(
                            Objective(o["metric"], o["comparison"], float(o["required"])),
                            math.nan if o["measured"] is None else float(o["measured"]),
                            bool(o["passed"]),
                        )
                        for o in data["verdict"]["objectives"]
                    )
                )
            judgement = Judgement(verdict, tuple(data.get("problems") or ()))
        return cls(
            id=str(data["id"]),
            model=str(data["model"]),
            version=int(data["version"]),
            package_digest=str(data["package_digest"]),
            tested=dict(data["tested"]),
            users=int(data["users"]),
            duration_s=float(data["duration_s"]),
            started_at=int(data["started_at"]),
            uploaded_at=int(data["uploaded_at"]),
            uploaded_by=str(data["uploaded_by"]),
            summary=dict(data["summary"]),
            judgement=judgement,
        )


# --- the uploaded document ------------------------------------------------------------------


@dataclass(frozen=True)
class CheckedDocument:
    """An uploaded report reduced to what the registry keeps: the stored document and the record's figures."""

    document: dict[str, Any]
    package_digest: str
    tested: dict[str, Any]
    users: int
    duration_s: float
    started_at: int
    summary: dict[str, Any]


def _fail(what: str) -> UsageError:
    return UsageError(f"the load-test report {what}")


def _number(document: Mapping[str, Any], key: str, *, low: float = 0, whole: bool = False) -> float:
    value = document.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise _fail(f"has no number '{key}' (got {value!r})")
    if value < low or (whole and value != int(value)):
        kind = "a whole number" if whole else "a number"
        raise _fail(f"field '{key}' must be {kind} >= {low:g}, not {value!r}")
    return float(value)


def _tested(document: Mapping[str, Any]) -> dict[str, Any]:
    tested = document.get("tested")
    if not isinstance(tested, Mapping):
        raise _fail("does not say what was tested ('tested': {'kind': ..., 'package_digest': ...})")
    kind, digest = tested.get("kind"), tested.get("package_digest")
    if kind not in TESTED_KINDS:
        raise _fail(f"'tested.kind' must be one of {', '.join(TESTED_KINDS)}, not {kind!r}")
    if not isinstance(digest, str) or not DIGEST_PATTERN.fullmatch(digest):
        raise _fail(
            f"'tested.package_digest' must be a package's sha256 digest (64 hex digits), not {digest!r}"
        )
    kept = {"kind": kind, "package_digest": digest}
    for key in ("image", "image_id", "repo_digest", "url"):
        value = tested.get(key)
        if value is not None:
            if not isinstance(value, str) or len(value) > 512:
                raise _fail(f"'tested.{key}' must be text of at most 512 characters")
            kept[key] = value
    return kept


def _summary(document: Mapping[str, Any], elapsed_s: float) -> dict[str, Any]:
    raw = document.get("summary")
    if not isinstance(raw, Mapping):
        raise _fail("has no 'summary' of overall figures")
    requests = int(_number(raw, "requests", whole=True))
    failures = int(_number(raw, "failures", whole=True))
    if failures > requests:
        raise _fail(f"counts {failures} failures in {requests} requests")
    summary: dict[str, Any] = {
        "requests": requests,
        "failures": failures,
        # Derived here from the raw counts: the client's own error rate and throughput are not used.
        "error_rate": round(failures / requests, 6) if requests else 1.0,
        "rps": round(requests / elapsed_s, 3) if elapsed_s > 0 else 0.0,
    }
    for key in LATENCY_KEYS:
        value = raw.get(key)
        summary[key] = None if value is None else _number(raw, key)
    if requests and any(summary[key] is None for key in ("p50_ms", "p95_ms", "p99_ms")):
        raise _fail(f"counts {requests} requests but gives no latency percentiles")
    return summary


def _timeseries(document: Mapping[str, Any]) -> list[Any]:
    series = document.get("timeseries")
    if not isinstance(series, list) or not all(isinstance(point, Mapping) for point in series):
        raise _fail("has no 'timeseries' (the figures per interval, a list of objects)")
    return series


def check_document(document: Any, *, report_id: str, model: str, version: int) -> CheckedDocument:
    """The document to keep and the record's figures; a :class:`UsageError` naming what is missing."""
    if not isinstance(document, Mapping):
        raise _fail("must be a JSON object")
    try:
        size = len(json.dumps(document, allow_nan=False, default=str).encode())
    except ValueError:
        raise _fail("holds a number JSON cannot carry (NaN or an infinity)") from None
    if size > MAX_DOCUMENT_BYTES:
        raise _fail(f"is over {MAX_DOCUMENT_BYTES // (1024 * 1024)} MiB")
    tested = _tested(document)
    users = int(_number(document, "users", low=1, whole=True))
    duration_s = _number(document, "duration_s")
    elapsed_s = _number(document, "elapsed_s")
    started_at = _number(document, "started_at")
    summary = _summary(document, elapsed_s)
    _timeseries(document)
    generator = document.get("generator")
    if generator is not None and not isinstance(generator, Mapping):
        raise _fail("field 'generator' must be an object (the load generator's CPU use)")
    kept = {key: value for key, value in document.items() if key != "verdict"}
    kept |= {"id": report_id, "model": model, "version": version, "tested": tested, "summary": summary}
    return CheckedDocument(
        document=kept,
        package_digest=tested["package_digest"],
        tested=tested,
        users=users,
        duration_s=duration_s,
        started_at=int(started_at * 1000),
        summary=summary,
    )


def check_html(html: Any) -> str:
    if not isinstance(html, str) or not html.strip():
        raise _fail("has no HTML page")
    if len(html.encode()) > MAX_HTML_BYTES:
        raise _fail(f"HTML page is over {MAX_HTML_BYTES // (1024 * 1024)} MiB")
    return html


# --- files ------------------------------------------------------------------------------------


class ReportFiles:
    """Report folders under ``loadtests/`` of the artifact store: written whole (both objects), read, removed."""

    def __init__(self, store: ArtifactStore) -> None:
        self.store = store

    def storage_path(self, name: str, version: int, report_id: str) -> str:
        model = path_component(check_model_name(name))
        return f"{LOADTESTS_DIR}/{model}/{check_version(version)}/{check_report_id(report_id)}"

    @staticmethod
    def check_storage_path(storage_path: str) -> str:
        return check_inside(storage_path, LOADTESTS_DIR, "load-test report")

    def write(self, storage_path: str, document: Mapping[str, Any], html: str) -> None:
        """Store the document and the page; the caller inserts the row only after this returns."""
        folder = self.check_storage_path(storage_path)
        files = {REPORT_JSON: (json.dumps(document, indent=2) + "\n").encode(), REPORT_HTML: html.encode()}
        try:
            for name, data in files.items():
                self.store.put(f"{folder}/{name}", io.BytesIO(data), size=len(data))
        except BaseException:
            remove_folder(self.store, folder)
            raise

    def document(self, storage_path: str, what: str) -> dict[str, Any]:
        data = self._read(
            storage_path, REPORT_JSON, f"the files of {what} are missing from the artifact store"
        )
        try:
            return json.loads(data)
        except ValueError:
            raise PackageIntegrityError(
                f"the stored document of {what} is not JSON: store the report again"
            ) from None

    def html(self, storage_path: str, what: str) -> str:
        data = self._read(
            storage_path, REPORT_HTML, f"the HTML page of {what} is missing from the artifact store"
        )
        return data.decode("utf-8", "replace")

    def _read(self, storage_path: str, name: str, missing: str) -> bytes:
        """One object of a report, read whole (so its sha256 is checked before a byte is used)."""
        try:
            with self.store.open(f"{self.check_storage_path(storage_path)}/{name}") as stream:
                return stream.read()
        except NotFoundError:
            raise NotFoundError(missing) from None

    def remove(self, storage_path: str, *, prune: bool = False) -> None:
        remove_folder(self.store, self.check_storage_path(storage_path), prune=prune)
