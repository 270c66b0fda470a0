"""The SQL registry store: registered models, versions, stages, aliases and the audit log.

Every method opens a session, does its work in one transaction and returns frozen
dataclasses from :mod:`quayside.registry.entities`. Every change to a model takes its
row's lock first (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite's write transactions
are serialised by ``BEGIN IMMEDIATE``), so version numbers, the one-production rule and
aliases stay consistent under concurrent writers. Each transition and alias move appends
to the audit log in the same transaction as the change itself; no method updates or
deletes an audit row.

The promotion policy is enforced here, under the same lock and in the same transaction as
the move: entering a protected stage or moving a protected alias needs a qualifying
load-test report (:mod:`quayside.registry.policy`), and with ``require_build`` a passing
build record, read and judged inside that transaction, or an admin's override. The audit
entry's evidence is what this store found (the report, the SLO, the figures, the build),
never anything a caller passed in.
"""

from __future__ import annotations

import json
import time
from collections import defaultdict
from collections.abc import Callable, Collection, Mapping, Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, delete, insert, select
from sqlalchemy import exc as sa_exc
from sqlalchemy.orm import Session

from quayside.artifacts import ArtifactStore, open_artifact_store
from quayside.artifacts.cache import PackageCache, home_cache_dir
from quayside.config import Settings
from quayside.db.engine import DatabaseTimeouts, Sessions
from quayside.db.sql import Lifecycle, now_ms, on_conflict_insert
from quayside.errors import AlreadyExistsError, InvalidStateError, NotFoundError, PolicyError, UsageError
from quayside.names import check_alias, check_model_name
from quayside.registry.artifacts import PackageStore
from quayside.registry.builds import BuildRecord, check_build_document, check_build_id, new_build_id
from quayside.registry.entities import (
    MAX_DESCRIPTION_LENGTH,
    MAX_REASON_LENGTH,
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    check_tags,
    check_text,
    check_version,
)
from quayside.registry.loadtests import (
    LoadTestReport,
    ReportFiles,
    check_document,
    check_html,
    check_report_id,
    new_report_id,
)
from quayside.registry.policy import (
    DEFAULT_POLICY,
    PolicyChange,
    PromotionPolicy,
    build_refusal,
    judge,
    judge_build,
    refusal,
)
from quayside.registry.stages import INITIAL_STAGE, Stage, check_actor, check_transition, parse_stage
from quayside.registry.tables import (
    AuditEntryRow,
    BuildRecordRow,
    LoadTestReportRow,
    ModelAliasRow,
    ModelVersionRow,
    ModelVersionTagRow,
    PromotionPolicyRow,
    RegisteredModelRow,
    RegisteredModelTagRow,
)

MAX_VERSIONS_IN_QUERY = 1000
"""Above this many versions, their tags are read for the whole model rather than bound one by one."""

Clock = Callable[[], float]
"""Seconds since the epoch; the store judges a report's age by it (tests pass their own)."""


class RegistryStore:
    """Registry metadata in a SQL database (migrated on first use) and package copies under the artifact root."""

    def __init__(
        self,
        database_url: str,
        artifacts: ArtifactStore | Path | str,
        *,
        package_cache: Path | None = None,
        timeouts: DatabaseTimeouts | None = None,
        clock: Clock = time.time,
    ) -> None:
        """``artifacts`` is the artifact store, or an artifact root to open one of (a directory,
        ``s3://bucket/prefix``); ``package_cache`` is the local folder packages of a remote store
        are downloaded to when read (see :mod:`quayside.artifacts.cache`)."""
        self.url = database_url
        self.sessions = Sessions(
            database_url, "registry", data_hint="versions are 32-bit integers", timeouts=timeouts
        )
        self.engine: Engine = self.sessions.engine
        self.artifacts = artifacts if isinstance(artifacts, ArtifactStore) else open_artifact_store(artifacts)
        cache = PackageCache(package_cache) if package_cache is not None else None
        self.packages = PackageStore(self.artifacts, cache)
        self.reports = ReportFiles(self.artifacts)
        self.clock = clock

    def _now_ms(self) -> int:
        return int(self.clock() * 1000)

    @classmethod
    def from_settings(cls, settings: Settings) -> RegistryStore:
        return cls(
            settings.database_url,
            open_artifact_store(settings.artifact_location),
            package_cache=home_cache_dir(settings.home),
            timeouts=DatabaseTimeouts.from_settings(settings),
        )

    # --- sessions and error translation ------------------------------------------------------

    def _read(self) -> AbstractContextManager[Session]:
        return self.sessions.read()

    def _write(self) -> AbstractContextManager[Session]:
        return self.sessions.write()

    @staticmethod
    def _model_row(session: Session, name: str, *, lock: bool = False) -> RegisteredModelRow:
        query = select(RegisteredModelRow).where(RegisteredModelRow.name == check_model_name(name))
        row = session.scalar(query.with_for_update() if lock else query)
        if row is None:
            raise NotFoundError(f"no registered model named '{name}'")
        return row

    @staticmethod
    def _version_row(session: Session, model: RegisteredModelRow, version: int) -> ModelVersionRow:
        row = session.get(ModelVersionRow, (model.id, check_version(version)))
        if row is None:
            raise NotFoundError(f"model '{model.name}' has no version {version}")
        return row

    def _live_version_row(self, session: Session, model: RegisteredModelRow, version: int) -> ModelVersionRow:
        row = self._version_row(session, model, version)
        if row.lifecycle != Lifecycle.ACTIVE:
            raise InvalidStateError(f"version {version} of '{model.name}' is deleted")
        return row

    # --- models ------------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool = False,
    ) -> RegisteredModel:
        check_model_name(name)
        check_text("description", description, MAX_DESCRIPTION_LENGTH)
        tag_values = check_tags(tags)
        try:
            with self._write() as session:
                now = now_ms()
                row = RegisteredModelRow(
                    name=name,
                    description=description or "",
                    allow_multiple_production=allow_multiple_production,
                    last_version=0,
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                _replace_tags(session, row.id, tag_values)
        except sa_exc.IntegrityError:
            raise AlreadyExistsError(f"a model named '{name}' is already registered") from None
        return self.get_model(name)

    def get_model(self, name: str) -> RegisteredModel:
        with self._read() as session:
            return _models(session, [self._model_row(session, name)])[0]

    def list_models(self, *, names: Collection[str] | None = None) -> list[RegisteredModel]:
        """Models by name; only those in ``names`` when given (the caller's permissions)."""
        query = select(RegisteredModelRow).order_by(RegisteredModelRow.name)
        if names is not None:
            query = query.where(RegisteredModelRow.name.in_(names))
        with self._read() as session:
            rows = list(session.scalars(query))
            return _models(session, rows)

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
    ) -> RegisteredModel:
        """Change a model's description, set (merge) tags, or its production rule; ``None`` leaves a field."""
        check_text("description", description, MAX_DESCRIPTION_LENGTH)
        tag_values = check_tags(tags)
        with self._write() as session:
            row = self._model_row(session, name, lock=True)
            if description is not None:
                row.description = description
            if allow_multiple_production is not None:
                in_production = _versions_in(session, row.id, Stage.PRODUCTION)
                if not allow_multiple_production and len(in_production) > 1:
                    numbers = ", ".join(str(v.version) for v in in_production)
                    raise InvalidStateError(
                        f"model '{name}' has versions {numbers} in production; archive all but one "
                        "before allowing only one"
                    )
                row.allow_multiple_production = allow_multiple_production
            if tag_values:
                session.execute(
                    delete(RegisteredModelTagRow).where(
                        RegisteredModelTagRow.model_id == row.id,
                        RegisteredModelTagRow.key.in_(list(tag_values)),
                    )
                )
                _replace_tags(session, row.id, tag_values, clear=False)
            row.updated_at = now_ms()
        return self.get_model(name)

    def delete_model(self, name: str, *, actor: str, reason: str = "") -> None:
        """Remove a model, its versions, aliases and package copies; its audit history stays.

        Refused while any version is in production (archive it first). The files removed are
        the ones its rows name: a renamed model's copies still lie under its old name's folder,
        which a model registered since under that name shares.
        """
        check_actor(actor)
        with self._write() as session:
            row = self._model_row(session, name, lock=True)
            live = _versions_in(session, row.id, Stage.PRODUCTION)
            if live:
                raise InvalidStateError(
                    f"model '{name}' has version {live[0].version} in production; archive it before "
                    "deleting the model"
                )
            packages = list(
                session.scalars(
                    select(ModelVersionRow.storage_path).where(ModelVersionRow.model_id == row.id)
                )
            )
            reports = list(
                session.scalars(
                    select(LoadTestReportRow.storage_path).where(LoadTestReportRow.model_id == row.id)
                )
            )
            _audit(session, model=name, version=None, action="delete_model", actor=actor, reason=reason)
            session.execute(delete(LoadTestReportRow).where(LoadTestReportRow.model_id == row.id))
            session.execute(delete(BuildRecordRow).where(BuildRecordRow.model_id == row.id))
            session.execute(delete(PromotionPolicyRow).where(PromotionPolicyRow.model_id == row.id))
            session.execute(delete(ModelAliasRow).where(ModelAliasRow.model_id == row.id))
            session.execute(delete(ModelVersionTagRow).where(ModelVersionTagRow.model_id == row.id))
            session.execute(delete(ModelVersionRow).where(ModelVersionRow.model_id == row.id))
            session.execute(delete(RegisteredModelTagRow).where(RegisteredModelTagRow.model_id == row.id))
            session.delete(row)
        for path in packages:
            self.packages.remove(path, prune=True)
        for path in reports:
            self.reports.remove(path, prune=True)

    def rename_model(self, name: str, new_name: str, *, actor: str, reason: str = "") -> RegisteredModel:
        """Give a model a new name; its versions, tags, aliases, policy and reports follow (they hang on its id).

        Package copies and report files stay where they lie (each row keeps its own path); new
        versions are copied under the new name. The audit log keeps what was entered under the
        old name and gets a ``rename`` entry under each name. Refused if the new name is taken.
        """
        check_model_name(new_name)
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        if new_name == name:
            return self.get_model(name)
        taken = AlreadyExistsError(f"a model named '{new_name}' is already registered; pick another name")
        try:
            with self._write() as session:
                row = self._model_row(session, name, lock=True)
                if session.scalar(select(RegisteredModelRow.id).where(RegisteredModelRow.name == new_name)):
                    raise taken
                row.name, row.updated_at = new_name, now_ms()
                for logged_under in (name, new_name):
                    _audit(
                        session,
                        model=logged_under,
                        version=None,
                        action="rename",
                        actor=actor,
                        reason=reason,
                        evidence={"from": name, "to": new_name},
                    )
        except sa_exc.IntegrityError:
            raise taken from None
        return self.get_model(new_name)

    def delete_model_tag(self, name: str, key: str) -> RegisteredModel:
        """Remove one of a model's tags (nothing to do if it has no such tag, as in MLflow)."""
        with self._write() as session:
            row = self._model_row(session, name, lock=True)
            removed = session.execute(
                delete(RegisteredModelTagRow).where(
                    RegisteredModelTagRow.model_id == row.id, RegisteredModelTagRow.key == key
                )
            ).rowcount
            if removed:
                row.updated_at = now_ms()
        return self.get_model(name)

    # --- versions ----------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        package: Path,
        *,
        actor: str,
        source: str | None = None,
        source_run_id: str | None = None,
        description: str = "",
        reason: str = "",
        model_description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
        version_tags: Mapping[str, Any] | None = None,
    ) -> ModelVersion:
        """Register a package as the model's next version (the model is created on first use).

        The package is verified, copied into the artifact store (each file's sha256 checked as
        it is stored, the manifest last) and only then numbered, under the model row's lock, so
        concurrent registrations get distinct consecutive numbers; a crash in between leaves
        objects no row names (``quayside gc`` lists them), never a row without its copy. ``source_run_id`` defaults to the
        manifest's ``source_run``. ``model_description``, ``tags`` and
        ``allow_multiple_production`` apply when this call creates the model; ``version_tags``
        are the new version's own tags.
        """
        check_model_name(name)
        check_actor(actor)
        check_text("description", description, MAX_DESCRIPTION_LENGTH)
        check_text("reason", reason, MAX_REASON_LENGTH)
        check_text("description", model_description, MAX_DESCRIPTION_LENGTH)
        tag_values = check_tags(tags)
        own_tags = check_tags(version_tags)
        storage_path, manifest = self.packages.add(Path(package), name)
        try:
            with self._write() as session:
                model = self._lock_or_create_model(
                    session, name, model_description or "", tag_values, bool(allow_multiple_production)
                )
                model.last_version += 1
                model.updated_at = now = now_ms()
                row = ModelVersionRow(
                    model_id=model.id,
                    version=model.last_version,
                    stage=INITIAL_STAGE.value,
                    lifecycle=Lifecycle.ACTIVE,
                    digest=manifest.digest(),
                    flavor=manifest.flavor,
                    signature=json.dumps(manifest.signature.to_dict()),
                    onnx_servable=manifest.onnx_servable,
                    source_run_id=source_run_id or manifest.source_run,
                    source=source or str(package),
                    storage_path=storage_path,
                    description=description or "",
                    created_at=now,
                    updated_at=now,
                )
                session.add(row)
                session.flush()
                _set_version_tags(session, model.id, row.version, own_tags)
                _audit(
                    session,
                    model=name,
                    version=row.version,
                    action="register",
                    to_value=row.stage,
                    actor=actor,
                    reason=reason,
                )
                return _version(row, name, (), own_tags)
        except BaseException:
            self.packages.remove(storage_path)
            raise

    def _lock_or_create_model(
        self, session: Session, name: str, description: str, tags: dict[str, str], allow_multiple: bool
    ) -> RegisteredModelRow:
        now = now_ms()
        values = {
            "name": name,
            "description": description,
            "allow_multiple_production": allow_multiple,
            "last_version": 0,
            "created_at": now,
            "updated_at": now,
        }
        # Concurrent first registrations: one insert wins, the others do nothing and wait on the lock.
        statement = on_conflict_insert(session, RegisteredModelRow)
        if statement is None:
            raise UsageError("the registry's database must be SQLite or PostgreSQL")
        statement = statement.values(**values).on_conflict_do_nothing()
        created = session.execute(statement.returning(RegisteredModelRow.id)).scalar()
        if created is not None:
            _replace_tags(session, created, tags)
        return self._model_row(session, name, lock=True)

    def get_version(self, name: str, version: int) -> ModelVersion:
        """A version, deleted or not (a deleted one says so in ``deleted``)."""
        with self._read() as session:
            model = self._model_row(session, name)
            return _versions(session, model, [self._version_row(session, model, version)])[0]

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        with self._read() as session:
            model = self._model_row(session, name)
            query = select(ModelVersionRow).where(ModelVersionRow.model_id == model.id)
            if not include_deleted:
                query = query.where(ModelVersionRow.lifecycle == Lifecycle.ACTIVE)
            rows = list(session.scalars(query.order_by(ModelVersionRow.version)))
            return _versions(session, model, rows)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        check_alias(alias)
        with self._read() as session:
            model = self._model_row(session, name)
            row = session.get(ModelAliasRow, (model.id, alias))
            if row is None:
                raise NotFoundError(f"model '{name}' has no alias '{alias}'")
            return _versions(session, model, [self._version_row(session, model, row.version)])[0]

    def get_latest_version(self, name: str, stage: str | None = None) -> ModelVersion:
        """The newest live version, or the newest in ``stage``."""
        parsed = parse_stage(stage) if stage is not None else None
        with self._read() as session:
            model = self._model_row(session, name)
            query = select(ModelVersionRow).where(
                ModelVersionRow.model_id == model.id, ModelVersionRow.lifecycle == Lifecycle.ACTIVE
            )
            if parsed is not None:
                query = query.where(ModelVersionRow.stage == parsed.value)
            row = session.scalar(query.order_by(ModelVersionRow.version.desc()).limit(1))
            if row is None:
                where = f" in {parsed.value}" if parsed is not None else ""
                raise NotFoundError(f"model '{name}' has no version{where}")
            return _versions(session, model, [row])[0]

    def package_dir(self, name: str, version: int) -> Path:
        """A local directory holding a live version's package copy: the copy itself in a local
        artifact store, else a verified download into the package cache (once per digest)."""
        with self._read() as session:
            model = self._model_row(session, name)
            row = self._live_version_row(session, model, version)
            storage_path, digest = row.storage_path, row.digest
        return self.packages.directory(storage_path, digest)

    def artifact_references(self) -> set[str]:
        """The artifact folders rows refer to: every version's package copy (deleted versions' too,
        whose rows remain) and every load-test report's files; what ``quayside gc`` keeps."""
        with self._read() as session:
            paths = set(session.scalars(select(ModelVersionRow.storage_path)))
            paths |= set(session.scalars(select(LoadTestReportRow.storage_path)))
        return paths

    def update_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        check_text("description", description, MAX_DESCRIPTION_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            row.description = description
            row.updated_at = now_ms()
        return self.get_version(name, version)

    def set_version_tag(self, name: str, version: int, key: str, value: str) -> ModelVersion:
        """Set (or replace) one tag of a live version."""
        tag = check_tags({key: value})
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            session.execute(
                delete(ModelVersionTagRow).where(
                    ModelVersionTagRow.model_id == model.id,
                    ModelVersionTagRow.version == row.version,
                    ModelVersionTagRow.key == key,
                )
            )
            _set_version_tags(session, model.id, row.version, tag)
            row.updated_at = now_ms()
        return self.get_version(name, version)

    def delete_version_tag(self, name: str, version: int, key: str) -> ModelVersion:
        """Remove one tag of a live version (nothing to do if it has no such tag, as in MLflow)."""
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            removed = session.execute(
                delete(ModelVersionTagRow).where(
                    ModelVersionTagRow.model_id == model.id,
                    ModelVersionTagRow.version == row.version,
                    ModelVersionTagRow.key == key,
                )
            ).rowcount
            if removed:
                row.updated_at = now_ms()
        return self.get_version(name, version)

    def transition(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        actor: str,
        reason: str = "",
        keep_previous: bool = False,
        override: bool = False,
    ) -> ModelVersion:
        """Move a version to another stage, as the transitions table and the model's policy allow; audit it.

        Entering a protected stage needs a qualifying load-test report (see
        :mod:`quayside.registry.policy`), else :class:`~quayside.errors.PolicyError`;
        ``override`` (with a ``reason``) moves anyway, marked so in the audit log; only an
        admin may ask for it, which the server checks before it calls this. Promoting to
        production archives the model's current production version(s), each with its own
        audit entry, unless ``keep_previous`` (which needs a model that allows several
        production versions). Anything refused changes nothing.
        """
        target = parse_stage(stage)
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            current = Stage(row.stage)
            check_transition(name, version, current, target)
            proof: dict[str, Any] = {}
            policy = _policy(session, model.id)
            if policy.protects_stage(target.value):
                move = _stage_move(name, version, target)
                proof = self._clearance(session, model, row, policy, move, override=override, reason=reason)
            displaced: list[ModelVersionRow] = []
            if target is Stage.PRODUCTION:
                displaced = self._displaced_by_promotion(session, model, version, keep_previous)
            now = now_ms()
            for old in displaced:
                old.stage, old.updated_at = Stage.ARCHIVED.value, now
                why = f"replaced in production by version {version}" + (f": {reason}" if reason else "")
                _audit(
                    session,
                    model=name,
                    version=old.version,
                    action="transition",
                    from_value=Stage.PRODUCTION,
                    to_value=Stage.ARCHIVED,
                    actor=actor,
                    reason=why,
                )
            row.stage, row.updated_at = target.value, now
            model.updated_at = now
            _audit(
                session,
                model=name,
                version=version,
                action="transition",
                from_value=current,
                to_value=target,
                actor=actor,
                reason=reason,
                evidence=proof,
                override=bool(proof.get("override")),
            )
        return self.get_version(name, version)

    def _clearance(
        self,
        session: Session,
        model: RegisteredModelRow,
        row: ModelVersionRow,
        policy: PromotionPolicy,
        move: tuple[str, str],
        *,
        override: bool,
        reason: str,
    ) -> dict[str, Any]:
        """The evidence that lets a protected move happen, or :class:`PolicyError`; read under the model's lock."""
        proof, message = self._standing(session, model, row, policy, move)
        if proof is not None:
            return proof
        if not override:
            raise PolicyError(message)
        if not reason.strip():
            raise UsageError(
                "an override of the promotion policy needs a reason (--reason TEXT); the audit log keeps it"
            )
        return {"override": True, "policy_refused": message, "slo": policy.slo}

    def _standing(
        self,
        session: Session,
        model: RegisteredModelRow,
        row: ModelVersionRow,
        policy: PromotionPolicy,
        move: tuple[str, str],
    ) -> tuple[dict[str, Any] | None, str]:
        """The evidence of the newest qualifying report (and build), or None and the refusal of ``move``."""
        proof, message = self._report_standing(session, model, row, policy, move)
        if proof is None or not policy.require_build:
            return proof, message
        build, message = _build_standing(session, model, row, policy, move[0])
        if build is None:
            return None, message
        return proof | {"build": build}, ""

    def _report_standing(
        self,
        session: Session,
        model: RegisteredModelRow,
        row: ModelVersionRow,
        policy: PromotionPolicy,
        move: tuple[str, str],
    ) -> tuple[dict[str, Any] | None, str]:
        """The evidence of the newest qualifying report, or None and the refusal of ``move`` (what, command)."""
        now = self._now_ms()
        judged = [
            (report, judge(policy, report.facts(), digest=row.digest, now_ms=now))
            for report in _reports(session, model, row.version)
        ]
        passing = next(((r, j) for r, j in judged if j.qualifies), None)
        if passing is not None:
            report, judgement = passing
            assert judgement.verdict is not None  # a qualifying report was judged against an SLO
            proof = {
                "loadtest_report": report.id,
                "slo": policy.slo,
                "figures": {o["metric"]: o["measured"] for o in judgement.verdict.to_dict()["objectives"]},
                "tested": dict(report.tested),
                "users": report.users,
                "duration_s": report.duration_s,
                "uploaded_by": report.uploaded_by,
            }
            return proof, ""
        newest = (judged[0][0].facts(), judged[0][1]) if judged else None
        what, command = move
        message = refusal(
            model=model.name, version=row.version, move=what, policy=policy, newest=newest, command=command
        )
        return None, message

    def blocked_moves(self, name: str, version: int) -> dict[str, str]:
        """The protected stages (``production``) and aliases (``@champion``) the version cannot take now.

        Each maps to the message the move would be refused with; an empty answer means every
        protected move is open to it (the web UI disables the others and says why).
        """
        with self._read() as session:
            model = self._model_row(session, name)
            row = self._live_version_row(session, model, version)
            policy = _policy(session, model.id)
            moves = {stage: _stage_move(name, version, Stage(stage)) for stage in policy.protected_stages}
            moves |= {f"@{alias}": _alias_move(name, version, alias) for alias in policy.protected_aliases}
            blocked = {}
            for key, move in moves.items():
                proof, message = self._standing(session, model, row, policy, move)
                if proof is None:
                    blocked[key] = message
            return blocked

    def _displaced_by_promotion(
        self, session: Session, model: RegisteredModelRow, version: int, keep_previous: bool
    ) -> list[ModelVersionRow]:
        current = [v for v in _versions_in(session, model.id, Stage.PRODUCTION) if v.version != version]
        if not keep_previous:
            return current
        if current and not model.allow_multiple_production:
            raise InvalidStateError(
                f"model '{model.name}' allows one production version and version {current[0].version} "
                "is in production; promote without keep_previous to archive it, or allow multiple "
                "production versions for this model"
            )
        return []

    def delete_version(self, name: str, version: int, *, actor: str, reason: str = "") -> ModelVersion:
        """Soft-delete a version: it leaves listings and resolution, its number is never reused.

        Refused for a production version (archive it first) and for an aliased one (move the alias).
        """
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            if row.stage == Stage.PRODUCTION.value:
                raise InvalidStateError(
                    f"version {version} of '{name}' is in production and cannot be deleted; archive it first"
                )
            aliases = _aliases_of(session, model.id).get(version, ())
            if aliases:
                raise InvalidStateError(
                    f"version {version} of '{name}' is aliased as {', '.join(aliases)}; "
                    "move or delete the alias first"
                )
            row.lifecycle, row.updated_at = Lifecycle.DELETED, now_ms()
            _audit(
                session,
                model=name,
                version=version,
                action="delete",
                from_value=row.stage,
                to_value=Lifecycle.DELETED,
                actor=actor,
                reason=reason,
            )
        return self.get_version(name, version)

    # --- aliases -----------------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str = "",
        override: bool = False,
    ) -> ModelVersion:
        """Point an alias at a live version (creating or moving it); audited unless it already pointed there.

        A protected alias moves only to a version with a qualifying load-test report, or
        with an admin's ``override`` (see :meth:`transition`).
        """
        check_alias(alias)
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            target = self._live_version_row(session, model, version)
            row = session.get(ModelAliasRow, (model.id, alias))
            previous = row.version if row is not None else None
            if previous != version:
                proof: dict[str, Any] = {}
                policy = _policy(session, model.id)
                if policy.protects_alias(alias):
                    move = _alias_move(name, version, alias)
                    proof = self._clearance(
                        session, model, target, policy, move, override=override, reason=reason
                    )
                if row is None:
                    session.add(ModelAliasRow(model_id=model.id, alias=alias, version=version))
                else:
                    row.version = version
                model.updated_at = now_ms()
                _audit(
                    session,
                    model=name,
                    version=version,
                    action="alias_set",
                    alias=alias,
                    from_value=previous,
                    to_value=version,
                    actor=actor,
                    reason=reason,
                    evidence=proof,
                    override=bool(proof.get("override")),
                )
        return self.get_version(name, version)

    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str = "") -> None:
        check_alias(alias)
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = session.get(ModelAliasRow, (model.id, alias))
            if row is None:
                raise NotFoundError(f"model '{name}' has no alias '{alias}'")
            _audit(
                session,
                model=name,
                version=row.version,
                action="alias_delete",
                alias=alias,
                from_value=row.version,
                actor=actor,
                reason=reason,
            )
            session.delete(row)
            model.updated_at = now_ms()

    def versions_from_run(self, run_id: str, *, names: Collection[str] | None = None) -> list[ModelVersion]:
        """Live versions registered from a run (its lineage in the registry), by model then version.

        ``names`` keeps only those models' versions (the models a caller may read); None keeps all.
        """
        query = (
            select(ModelVersionRow, RegisteredModelRow)
            .join(RegisteredModelRow, RegisteredModelRow.id == ModelVersionRow.model_id)
            .where(ModelVersionRow.source_run_id == run_id, ModelVersionRow.lifecycle == Lifecycle.ACTIVE)
            .order_by(RegisteredModelRow.name, ModelVersionRow.version)
        )
        if names is not None:
            query = query.where(RegisteredModelRow.name.in_(sorted(names)))
        with self._read() as session:
            found: list[ModelVersion] = []
            for row, model in session.execute(query).all():
                found.extend(_versions(session, model, [row]))
            return found

    # --- promotion policy ----------------------------------------------------------------------

    def get_policy(self, name: str) -> PromotionPolicy:
        """The model's promotion policy (the default one until it is first set)."""
        with self._read() as session:
            return _policy(session, self._model_row(session, name).id)

    def set_policy(self, name: str, change: PolicyChange, *, actor: str, reason: str = "") -> PromotionPolicy:
        """Change the fields ``change`` sets; audited as ``policy_set`` with the values before and after."""
        check_actor(actor)
        check_text("reason", reason, MAX_REASON_LENGTH)
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            before = _policy(session, model.id)
            after = before.changed(change)
            now = now_ms()
            values = {
                "protected_stages": json.dumps(list(after.protected_stages)),
                "protected_aliases": json.dumps(list(after.protected_aliases)),
                "slo": after.slo,
                "max_report_age_s": after.max_report_age_s,
                "min_users": after.min_users,
                "min_duration_s": after.min_duration_s,
                "require_image": after.require_image,
                "budget": after.budget,
                "require_build": after.require_build,
                "updated_at": now,
                "updated_by": actor,
            }
            stored = session.get(PromotionPolicyRow, model.id)
            if stored is None:
                session.add(PromotionPolicyRow(model_id=model.id, **values))
            else:
                for key, value in values.items():
                    setattr(stored, key, value)
            model.updated_at = now
            _audit(
                session,
                model=name,
                version=None,
                action="policy_set",
                actor=actor,
                reason=reason,
                evidence={"before": _policy_values(before), "after": _policy_values(after)},
            )
        return self.get_policy(name)

    # --- load-test reports ---------------------------------------------------------------------

    def add_loadtest_report(
        self, name: str, version: int, document: Mapping[str, Any], html: str, *, actor: str
    ) -> LoadTestReport:
        """Keep a load-test report of a live version: files first (whole), then the row; judged on the way out.

        The report id is the store's; the verdict is computed from the figures with the
        policy in force, never taken from the document.
        """
        check_actor(actor)
        report_id = new_report_id()
        checked = check_document(document, report_id=report_id, model=name, version=version)
        page = check_html(html)
        with self._read() as session:
            self._live_version_row(session, self._model_row(session, name), version)
        storage_path = self.reports.storage_path(name, version, report_id)
        self.reports.write(storage_path, checked.document, page)
        try:
            with self._write() as session:
                model = self._model_row(session, name, lock=True)
                self._live_version_row(session, model, version)
                session.add(
                    LoadTestReportRow(
                        id=report_id,
                        model_id=model.id,
                        version=version,
                        package_digest=checked.package_digest,
                        target=json.dumps(checked.tested, sort_keys=True),
                        users=checked.users,
                        duration_s=checked.duration_s,
                        started_at=checked.started_at,
                        uploaded_at=self._now_ms(),
                        uploaded_by=actor,
                        summary=json.dumps(checked.summary, sort_keys=True),
                        storage_path=storage_path,
                    )
                )
        except BaseException:
            self.reports.remove(storage_path)
            raise
        return self.loadtest_record(name, version, report_id)

    def loadtest_reports(self, name: str, version: int) -> list[LoadTestReport]:
        """A version's load-test reports, newest first, each judged against the policy in force now."""
        with self._read() as session:
            model = self._model_row(session, name)
            row = self._version_row(session, model, version)
            policy, now = _policy(session, model.id), self._now_ms()
            return [_judged(r, policy, row.digest, now) for r in _reports(session, model, version)]

    def loadtest_record(self, name: str, version: int, report_id: str) -> LoadTestReport:
        """One report's record, judged against the policy in force now."""
        with self._read() as session:
            model, row, stored = self._report_row(session, name, version, report_id)
            report = _report(stored, model.name)
            return _judged(report, _policy(session, model.id), row.digest, self._now_ms())

    def loadtest_report(self, name: str, version: int, report_id: str) -> dict[str, Any]:
        """One report's full document (figures per interval included), with the registry's judgement now."""
        record = self.loadtest_record(name, version, report_id)
        with self._read() as session:
            _, _, stored = self._report_row(session, name, version, report_id)
            path = stored.storage_path
        document = self.reports.document(path, f"load-test report '{report_id}'")
        return {**document, "record": record.to_dict(), "verdict": record.to_dict()["verdict"]}

    def loadtest_report_page(self, name: str, version: int, report_id: str) -> str:
        """One report's self-contained HTML page, as the load generator rendered it (checked on read)."""
        with self._read() as session:
            _, _, stored = self._report_row(session, name, version, report_id)
            path = stored.storage_path
        return self.reports.html(path, f"load-test report '{report_id}'")

    def _report_row(
        self, session: Session, name: str, version: int, report_id: str
    ) -> tuple[RegisteredModelRow, ModelVersionRow, LoadTestReportRow]:
        model = self._model_row(session, name)
        row = self._version_row(session, model, version)
        stored = session.get(LoadTestReportRow, check_report_id(report_id))
        if stored is None or stored.model_id != model.id or stored.version != version:
            raise NotFoundError(f"model '{name}' version {version} has no load-test report '{report_id}'")
        return model, row, stored

    # --- build records ---------------------------------------------------------------------------

    def add_build_record(
        self, name: str, version: int, document: Mapping[str, Any], *, actor: str
    ) -> BuildRecord:
        """Keep the record of an image built of a live version (a row only); judged on the way out.

        The image must hold the version's own package (the document's ``package_digest``); the
        record id is the store's, and whether it passes is the policy's call, never the document's.
        """
        check_actor(actor)
        checked = check_build_document(document, model=name, version=version)
        build_id = new_build_id()
        with self._write() as session:
            model = self._model_row(session, name, lock=True)
            row = self._live_version_row(session, model, version)
            if checked.package_digest != row.digest:
                raise UsageError(
                    f"the image {checked.tag} holds package {checked.package_digest[:12]}, not version "
                    f"{version} of '{name}' (package {row.digest[:12]}): build models:/{name}/{version} "
                    "to record a build of it"
                )
            session.add(
                BuildRecordRow(
                    id=build_id,
                    model_id=model.id,
                    version=version,
                    package_digest=checked.package_digest,
                    tag=checked.tag,
                    image_id=checked.image_id,
                    size_bytes=checked.size_bytes,
                    base_image=checked.base_image,
                    quayside_version=checked.quayside_version,
                    repo_digest=checked.repo_digest,
                    smoke_status=checked.smoke,
                    cold_start_s=checked.cold_start_s,
                    first_inference_ms=checked.first_inference_ms,
                    smoke_detail=checked.smoke_detail,
                    budget=checked.budget,
                    built_at=checked.built_at,
                    recorded_at=self._now_ms(),
                    recorded_by=actor,
                )
            )
        return self.build_record(name, version, build_id)

    def build_records(self, name: str, version: int) -> list[BuildRecord]:
        """A version's build records, newest first, each judged against the policy in force now."""
        with self._read() as session:
            model = self._model_row(session, name)
            row = self._version_row(session, model, version)
            policy = _policy(session, model.id)
            return [_judged_build(b, policy, row.digest) for b in _builds(session, model, version)]

    def build_record(self, name: str, version: int, build_id: str) -> BuildRecord:
        """One build record, judged against the policy in force now."""
        with self._read() as session:
            model = self._model_row(session, name)
            row = self._version_row(session, model, version)
            stored = session.get(BuildRecordRow, check_build_id(build_id))
            if stored is None or stored.model_id != model.id or stored.version != version:
                raise NotFoundError(f"model '{name}' version {version} has no build '{build_id}'")
            return _judged_build(_build(stored, model.name), _policy(session, model.id), row.digest)

    # --- audit -------------------------------------------------------------------------------

    def history(self, name: str, version: int | None = None) -> list[AuditEntry]:
        """The model's audit entries, oldest first (also after the model was deleted)."""
        check_model_name(name)
        query = select(AuditEntryRow).where(AuditEntryRow.model == name)
        if version is not None:
            query = query.where(AuditEntryRow.version == check_version(version))
        with self._read() as session:
            rows = list(session.scalars(query.order_by(AuditEntryRow.id)))
            if (
                not rows
                and session.scalar(select(RegisteredModelRow.id).where(RegisteredModelRow.name == name))
                is None
            ):
                raise NotFoundError(f"no registered model named '{name}'")
            return [_entry(row) for row in rows]


# --- helpers -------------------------------------------------------------------------------


def _replace_tags(session: Session, model_id: int, tags: Mapping[str, str], *, clear: bool = True) -> None:
    if clear:
        session.execute(delete(RegisteredModelTagRow).where(RegisteredModelTagRow.model_id == model_id))
    if tags:
        session.execute(
            insert(RegisteredModelTagRow),
            [{"model_id": model_id, "key": k, "value": v} for k, v in tags.items()],
        )


def _set_version_tags(session: Session, model_id: int, version: int, tags: Mapping[str, str]) -> None:
    if tags:
        session.execute(
            insert(ModelVersionTagRow),
            [{"model_id": model_id, "version": version, "key": k, "value": v} for k, v in tags.items()],
        )


def _version_tags_of(session: Session, model_id: int, versions: Collection[int]) -> dict[int, dict[str, str]]:
    by_version: dict[int, dict[str, str]] = defaultdict(dict)
    if not versions:
        return by_version
    query = select(ModelVersionTagRow.version, ModelVersionTagRow.key, ModelVersionTagRow.value).where(
        ModelVersionTagRow.model_id == model_id
    )
    if len(versions) <= MAX_VERSIONS_IN_QUERY:
        query = query.where(ModelVersionTagRow.version.in_(list(versions)))
    for version, key, value in session.execute(query.order_by(ModelVersionTagRow.key)):
        by_version[version][key] = value
    return by_version


def _versions_in(session: Session, model_id: int, stage: Stage) -> list[ModelVersionRow]:
    return list(
        session.scalars(
            select(ModelVersionRow)
            .where(
                ModelVersionRow.model_id == model_id,
                ModelVersionRow.stage == stage.value,
                ModelVersionRow.lifecycle == Lifecycle.ACTIVE,
            )
            .order_by(ModelVersionRow.version)
        )
    )


def _aliases_of(session: Session, model_id: int) -> dict[int, tuple[str, ...]]:
    by_version: dict[int, list[str]] = defaultdict(list)
    for alias, version in session.execute(
        select(ModelAliasRow.alias, ModelAliasRow.version)
        .where(ModelAliasRow.model_id == model_id)
        .order_by(ModelAliasRow.alias)
    ):
        by_version[version].append(alias)
    return {version: tuple(aliases) for version, aliases in by_version.items()}


def _stage_move(name: str, version: int, stage: Stage) -> tuple[str, str]:
    """What entering ``stage`` is called in a refusal, and the command that earns it."""
    command = f"quayside promote {name} {version}"
    return f"enter {stage.value}", command if stage is Stage.PRODUCTION else f"{command} --to {stage.value}"


def _alias_move(name: str, version: int, alias: str) -> tuple[str, str]:
    return f"take the protected alias '{alias}'", f"quayside promote {name} {version} --alias {alias}"


def _policy(session: Session, model_id: int) -> PromotionPolicy:
    row = session.get(PromotionPolicyRow, model_id)
    if row is None:
        return DEFAULT_POLICY
    return PromotionPolicy(
        protected_stages=tuple(json.loads(row.protected_stages)),
        protected_aliases=tuple(json.loads(row.protected_aliases)),
        slo=row.slo,
        max_report_age_s=row.max_report_age_s,
        min_users=row.min_users,
        min_duration_s=row.min_duration_s,
        require_image=bool(row.require_image),
        budget=row.budget,
        require_build=bool(row.require_build),
        updated_at=row.updated_at,
        updated_by=row.updated_by,
    )


def _policy_values(policy: PromotionPolicy) -> dict[str, Any]:
    values = policy.to_dict()
    del values["updated_at"], values["updated_by"]
    return values


def _reports(session: Session, model: RegisteredModelRow, version: int) -> list[LoadTestReport]:
    """The version's reports, newest first (by when they were measured, then uploaded)."""
    rows = session.scalars(
        select(LoadTestReportRow)
        .where(LoadTestReportRow.model_id == model.id, LoadTestReportRow.version == version)
        .order_by(LoadTestReportRow.started_at.desc(), LoadTestReportRow.uploaded_at.desc())
    )
    return [_report(row, model.name) for row in rows]


def _report(row: LoadTestReportRow, model: str) -> LoadTestReport:
    return LoadTestReport(
        id=row.id,
        model=model,
        version=row.version,
        package_digest=row.package_digest,
        tested=json.loads(row.target),
        users=row.users,
        duration_s=row.duration_s,
        started_at=row.started_at,
        uploaded_at=row.uploaded_at,
        uploaded_by=row.uploaded_by,
        summary=json.loads(row.summary),
    )


def _judged(report: LoadTestReport, policy: PromotionPolicy, digest: str, now_ms: int) -> LoadTestReport:
    return replace(report, judgement=judge(policy, report.facts(), digest=digest, now_ms=now_ms))


def _builds(session: Session, model: RegisteredModelRow, version: int) -> list[BuildRecord]:
    """The version's build records, newest first (by when they were built, then recorded)."""
    rows = session.scalars(
        select(BuildRecordRow)
        .where(BuildRecordRow.model_id == model.id, BuildRecordRow.version == version)
        .order_by(BuildRecordRow.built_at.desc(), BuildRecordRow.recorded_at.desc(), BuildRecordRow.id)
    )
    return [_build(row, model.name) for row in rows]


def _build(row: BuildRecordRow, model: str) -> BuildRecord:
    return BuildRecord(
        id=row.id,
        model=model,
        version=row.version,
        package_digest=row.package_digest,
        tag=row.tag,
        image_id=row.image_id,
        size_bytes=row.size_bytes,
        base_image=row.base_image,
        quayside_version=row.quayside_version,
        repo_digest=row.repo_digest,
        smoke=row.smoke_status,
        cold_start_s=row.cold_start_s,
        first_inference_ms=row.first_inference_ms,
        smoke_detail=row.smoke_detail,
        budget=row.budget,
        built_at=row.built_at,
        recorded_at=row.recorded_at,
        recorded_by=row.recorded_by,
    )


def _judged_build(build: BuildRecord, policy: PromotionPolicy, digest: str) -> BuildRecord:
    return replace(build, judgement=judge_build(policy, build.facts(), digest=digest))


def _build_standing(
    session: Session, model: RegisteredModelRow, row: ModelVersionRow, policy: PromotionPolicy, move: str
) -> tuple[dict[str, Any] | None, str]:
    """The evidence of the newest passing build, or None and the refusal of ``move`` for want of one."""
    judged = [_judged_build(b, policy, row.digest) for b in _builds(session, model, row.version)]
    passing = next((b for b in judged if b.passed), None)
    if passing is not None:
        evidence = {
            "id": passing.id,
            "image_id": passing.image_id,
            "repo_digest": passing.repo_digest,
            "tag": passing.tag,
        }
        return evidence, ""
    newest = None
    if judged and judged[0].judgement is not None:
        newest = (judged[0].facts(), judged[0].judgement)
    message = build_refusal(model=model.name, version=row.version, move=move, policy=policy, newest=newest)
    return None, message


def _audit(
    session: Session,
    *,
    model: str,
    version: int | None,
    action: str,
    actor: str,
    reason: str,
    alias: str | None = None,
    from_value: Any = None,
    to_value: Any = None,
    evidence: Mapping[str, Any] | None = None,
    override: bool = False,
) -> None:
    """Append one entry to the audit log, in the caller's transaction; ``None`` values stay NULL."""
    session.add(
        AuditEntryRow(
            model=model,
            version=version,
            action=action,
            alias=alias,
            from_value=None if from_value is None else str(from_value),
            to_value=None if to_value is None else str(to_value),
            actor=actor,
            timestamp=now_ms(),
            reason=reason or "",
            evidence=json.dumps(dict(evidence or {}), sort_keys=True),
            override=override,
        )
    )


def _models(session: Session, rows: Sequence[RegisteredModelRow]) -> list[RegisteredModel]:
    if not rows:
        return []
    ids = [row.id for row in rows]
    tags: dict[int, dict[str, str]] = defaultdict(dict)
    for model_id, key, value in session.execute(
        select(RegisteredModelTagRow.model_id, RegisteredModelTagRow.key, RegisteredModelTagRow.value)
        .where(RegisteredModelTagRow.model_id.in_(ids))
        .order_by(RegisteredModelTagRow.key)
    ):
        tags[model_id][key] = value
    aliases: dict[int, dict[str, int]] = defaultdict(dict)
    for model_id, alias, version in session.execute(
        select(ModelAliasRow.model_id, ModelAliasRow.alias, ModelAliasRow.version)
        .where(ModelAliasRow.model_id.in_(ids))
        .order_by(ModelAliasRow.alias)
    ):
        aliases[model_id][alias] = version
    return [
        RegisteredModel(
            name=row.name,
            description=row.description,
            tags=tags[row.id],
            allow_multiple_production=bool(row.allow_multiple_production),
            created_at=row.created_at,
            updated_at=row.updated_at,
            latest_version=row.last_version,
            aliases=aliases[row.id],
        )
        for row in rows
    ]


def _versions(
    session: Session, model: RegisteredModelRow, rows: Sequence[ModelVersionRow]
) -> list[ModelVersion]:
    aliases = _aliases_of(session, model.id)
    tags = _version_tags_of(session, model.id, [row.version for row in rows])
    return [_version(row, model.name, aliases.get(row.version, ()), tags.get(row.version)) for row in rows]


def _version(
    row: ModelVersionRow, name: str, aliases: tuple[str, ...], tags: Mapping[str, str] | None = None
) -> ModelVersion:
    return ModelVersion(
        name=name,
        version=row.version,
        stage=row.stage,
        digest=row.digest,
        flavor=row.flavor,
        signature=json.loads(row.signature),
        onnx_servable=bool(row.onnx_servable),
        source_run_id=row.source_run_id,
        source=row.source,
        description=row.description,
        created_at=row.created_at,
        updated_at=row.updated_at,
        deleted=row.lifecycle != Lifecycle.ACTIVE,
        aliases=aliases,
        tags=dict(tags or {}),
    )


def _entry(row: AuditEntryRow) -> AuditEntry:
    return AuditEntry(
        id=row.id,
        model=row.model,
        version=row.version,
        action=row.action,
        alias=row.alias,
        from_value=row.from_value,
        to_value=row.to_value,
        actor=row.actor,
        timestamp=row.timestamp,
        reason=row.reason,
        evidence=json.loads(row.evidence),
        override=bool(row.override),
    )
