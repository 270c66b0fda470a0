"""The registry tables. Times are milliseconds since the epoch, in UTC.

Runs are referred to by id only (``source_run_id`` has no foreign key: the registry
does not depend on tracking, and a version outlives the run it came from). The audit
log names its model by name rather than by key so that it outlives a deleted model;
nothing in the code updates or deletes its rows.
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quayside.db.base import Base
from quayside.db.sql import BigId, Lifecycle

NAME_LENGTH = 128
ALIAS_LENGTH = 64
TAG_KEY_LENGTH = 250


class RegisteredModelRow(Base):
    __tablename__ = "registered_models"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    description: Mapped[str] = mapped_column(Text, default="")
    allow_multiple_production: Mapped[bool] = mapped_column(Boolean, default=False)
    last_version: Mapped[int] = mapped_column(Integer, default=0)
    """The highest version number handed out; raised under the model row's lock."""
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class RegisteredModelTagRow(Base):
    __tablename__ = "registered_model_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(TAG_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelVersionRow(Base):
    __tablename__ = "model_versions"
    __table_args__ = (Index("ix_model_versions_model_id_stage", "model_id", "stage"),)

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    stage: Mapped[str] = mapped_column(String(16))
    lifecycle: Mapped[str] = mapped_column(String(16), default=Lifecycle.ACTIVE)
    digest: Mapped[str] = mapped_column(String(64))
    flavor: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    onnx_servable: Mapped[bool] = mapped_column(Boolean)
    source_run_id: Mapped[str | None] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    """What was registered (a path or URI), for people reading the history."""
    storage_path: Mapped[str] = mapped_column(String(512))
    """The package copy, relative to the artifact root."""
    description: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class ModelVersionTagRow(Base):
    """A tag on one model version (MLflow's ``ModelVersionTag``); Quayside's own tags are the model's."""

    __tablename__ = "model_versions_tags"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    version: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(TAG_KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class ModelAliasRow(Base):
    __tablename__ = "model_aliases"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    alias: Mapped[str] = mapped_column(String(ALIAS_LENGTH), primary_key=True)
    version: Mapped[int] = mapped_column(Integer)


class AuditEntryRow(Base):
    __tablename__ = "registry_audit_log"
    __table_args__ = (Index("ix_registry_audit_log_model", "model", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    model: Mapped[str] = mapped_column(String(NAME_LENGTH))
    version: Mapped[int | None] = mapped_column(Integer)
    action: Mapped[str] = mapped_column(String(32))
    alias: Mapped[str | None] = mapped_column(String(ALIAS_LENGTH))
    from_value: Mapped[str | None] = mapped_column(String(64))
    to_value: Mapped[str | None] = mapped_column(String(64))
    actor: Mapped[str] = mapped_column(String(256))
    timestamp: Mapped[int] = mapped_column(BigInteger)
    reason: Mapped[str] = mapped_column(Text, default="")
    evidence: Mapped[str] = mapped_column(Text, default="{}")
    """A JSON object the store writes: what the change was based on (the report it checked, the
    SLO and the figures; a policy's values before and after). Never taken from a request."""
    override: Mapped[bool] = mapped_column(Boolean, default=False)
    """An admin moved a version past the promotion policy (the entry's reason says why)."""


class PromotionPolicyRow(Base):
    """A registered model's promotion policy; a model without a row has the default policy."""

    __tablename__ = "registry_policies"

    model_id: Mapped[int] = mapped_column(
        ForeignKey("registered_models.id", ondelete="CASCADE"), primary_key=True
    )
    protected_stages: Mapped[str] = mapped_column(Text)
    """A JSON list of stage names."""
    protected_aliases: Mapped[str] = mapped_column(Text)
    """A JSON list of alias names."""
    slo: Mapped[str | None] = mapped_column(Text)
    max_report_age_s: Mapped[int] = mapped_column(Integer)
    min_users: Mapped[int] = mapped_column(Integer)
    min_duration_s: Mapped[float] = mapped_column(Float)
    require_image: Mapped[bool] = mapped_column(Boolean)
    budget: Mapped[str | None] = mapped_column(Text)
    """Canonical budget text a build is judged against (``image_mb<=200``); NULL: no bounds."""
    require_build: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[int] = mapped_column(BigInteger)
    updated_by: Mapped[str] = mapped_column(String(256))


class LoadTestReportRow(Base):
    """A load-test report of one version: its figures here, its full document and HTML page in the artifact root.

    Bound to the version and to the package digest that was tested; the verdict is not stored,
    it is computed from ``summary`` with the policy in force whenever it is needed.
    """

    __tablename__ = "loadtest_reports"
    __table_args__ = (Index("ix_loadtest_reports_model_id_version", "model_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    package_digest: Mapped[str] = mapped_column(String(64))
    """The digest of the package that was load-tested (read from the image's label for an image)."""
    target: Mapped[str] = mapped_column(Text)
    """A JSON object: what was tested (``{"kind": "package"}`` or the image's reference, id and digest)."""
    users: Mapped[int] = mapped_column(Integer)
    duration_s: Mapped[float] = mapped_column(Float)
    started_at: Mapped[int] = mapped_column(BigInteger)
    uploaded_at: Mapped[int] = mapped_column(BigInteger)
    uploaded_by: Mapped[str] = mapped_column(String(256))
    summary: Mapped[str] = mapped_column(Text)
    """A JSON object of the overall figures an SLO is judged on (requests, failures, rps, p50_ms ...)."""
    storage_path: Mapped[str] = mapped_column(String(512))
    """The report's folder, relative to the artifact root."""


class BuildRecordRow(Base):
    """An image ``quayside build`` made of one version, and how its smoke test went; no files of its own.

    Bound to the version and to the package digest the image holds; whether it passes is not
    stored, it is judged from these figures with the policy in force whenever it is needed.
    """

    __tablename__ = "build_records"
    __table_args__ = (Index("ix_build_records_model_id_version", "model_id", "version"),)

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    model_id: Mapped[int] = mapped_column(ForeignKey("registered_models.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    package_digest: Mapped[str] = mapped_column(String(64))
    tag: Mapped[str] = mapped_column(String(512))
    image_id: Mapped[str] = mapped_column(String(71))
    """``sha256:`` and 64 hex digits, as the engine names the image."""
    size_bytes: Mapped[int] = mapped_column(BigInteger)
    base_image: Mapped[str] = mapped_column(String(512))
    quayside_version: Mapped[str] = mapped_column(String(64))
    repo_digest: Mapped[str | None] = mapped_column(String(512))
    """``REPOSITORY@sha256:...`` once the image was pushed; NULL for an image only built locally."""
    smoke_status: Mapped[str] = mapped_column(String(16))
    """``passed``, ``failed`` or ``skipped``."""
    cold_start_s: Mapped[float | None] = mapped_column(Float)
    first_inference_ms: Mapped[float | None] = mapped_column(Float)
    smoke_detail: Mapped[str] = mapped_column(Text)
    budget: Mapped[str | None] = mapped_column(Text)
    """The budget the build was judged against when it was built (the policy's decides now)."""
    built_at: Mapped[int] = mapped_column(BigInteger)
    recorded_at: Mapped[int] = mapped_column(BigInteger)
    recorded_by: Mapped[str] = mapped_column(String(256))
