"""``RegistryClient``: register, find, promote and alias model versions, locally or through a server.

The backend is picked like tracking's: a ``registry_uri`` (or ``QUAYSIDE_REGISTRY_URI``,
then ``QUAYSIDE_TRACKING_URI``) of ``http(s)://...`` talks to a ``quayside server``;
anything else uses the local SQL store and artifact root. The actor named in the audit
log is the ``actor`` argument, else ``QUAYSIDE_ACTOR``, else the OS user.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from quayside import config
from quayside.config import Settings, load_settings
from quayside.credentials import token_for
from quayside.registry.backend import RegistryBackend
from quayside.registry.builds import BuildRecord
from quayside.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from quayside.registry.loadtests import LoadTestReport
from quayside.registry.policy import PolicyChange, PromotionPolicy
from quayside.registry.stages import resolve_actor
from quayside.registry.uris import ResolvedModel, RunArtifactPath, parse_model_uri, resolve_model_uri


def backend_for(settings: Settings, registry_uri: str | None = None) -> RegistryBackend:
    """The backend a registry URI names (falling back to the settings, then the local store)."""

    def rest(uri: str) -> RegistryBackend:
        from quayside.artifacts.cache import home_cache_dir
        from quayside.registry.rest import RestRegistry

        cache = home_cache_dir(settings.home)
        return RestRegistry(uri, cache, timeout_s=settings.http_timeout_s, token=token_for(settings, uri))

    def local(settings: Settings) -> RegistryBackend:
        from quayside.registry.store import RegistryStore

        return RegistryStore.from_settings(settings)

    uri = registry_uri or settings.registry_uri or settings.tracking_uri
    return config.backend_for(uri, settings, what="registry", rest=rest, local=local)


class RegistryClient:
    """Registered models and their versions, stages, aliases and audit history.

    ``RegistryClient()`` reads the ``QUAYSIDE_*`` settings; ``RegistryClient("http://host:5000")``
    talks to that server. ``run_artifact_path`` lets ``runs:/`` URIs resolve (``quayside``'s
    own ``RegistryClient`` supplies one from tracking).
    """

    def __init__(
        self,
        registry_uri: str | None = None,
        *,
        settings: Settings | None = None,
        run_artifact_path: RunArtifactPath | None = None,
    ) -> None:
        settings = settings or load_settings()
        if registry_uri is not None:
            # Kept in the settings too, so that what this client starts (a `quayside serve` of one of
            # its versions) reaches the same registry.
            settings = settings.model_copy(update={"registry_uri": registry_uri})
        self.settings = settings
        self.backend = backend_for(self.settings, registry_uri)
        self.run_artifact_path = run_artifact_path

    def _actor(self, actor: str | None) -> str | None:
        # A server that knows the caller from its token records that user; the OS user is only a
        # guess for servers without auth. An actor given outright is still sent (and checked there).
        if getattr(self.backend, "authenticated", False) and not (actor or self.settings.actor):
            return None
        return resolve_actor(actor, self.settings.actor)

    # --- models ------------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool = False,
    ) -> RegisteredModel:
        return self.backend.create_model(name, description, tags, allow_multiple_production)

    def get_model(self, name: str) -> RegisteredModel:
        return self.backend.get_model(name)

    def list_models(self) -> list[RegisteredModel]:
        return self.backend.list_models()

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
    ) -> RegisteredModel:
        return self.backend.update_model(
            name, description=description, tags=tags, allow_multiple_production=allow_multiple_production
        )

    def delete_model(self, name: str, *, actor: str | None = None, reason: str = "") -> None:
        self.backend.delete_model(name, actor=self._actor(actor), reason=reason)

    # --- versions ----------------------------------------------------------------------------

    def register_model(
        self,
        model: str | Path,
        name: str,
        *,
        description: str = "",
        model_description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> ModelVersion:
        """Register a package (a path or any model URI) as the next version of ``name``; it starts as candidate.

        The model is created on first registration, with ``model_description``, ``tags`` and
        ``allow_multiple_production``. The version records the package's source run (from its
        manifest, or the run of a ``runs:/`` URI).
        """
        resolved = self.resolve(model)
        source_run = resolved.run_id if parse_model_uri(str(model)).kind == "runs" else None
        return self.backend.register_version(
            name,
            resolved.path,
            actor=self._actor(actor),
            source=str(model),
            source_run_id=source_run,
            description=description,
            reason=reason,
            model_description=model_description,
            tags=tags,
            allow_multiple_production=allow_multiple_production,
        )

    def get_version(self, name: str, version: int) -> ModelVersion:
        return self.backend.get_version(name, version)

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        return self.backend.list_versions(name, include_deleted=include_deleted)

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return self.backend.get_version_by_alias(name, alias)

    def get_latest_version(self, name: str, stage: str | None = None) -> ModelVersion:
        return self.backend.get_latest_version(name, stage)

    def update_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        return self.backend.update_version(name, version, description=description)

    def transition(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        reason: str = "",
        actor: str | None = None,
        keep_previous: bool = False,
        override: bool = False,
    ) -> ModelVersion:
        """Move a version to ``stage``, as the model's promotion policy allows.

        A protected stage (``production`` by default) needs a qualifying load-test report,
        else :class:`~quayside.errors.PolicyError` (``quayside promote`` runs and uploads
        one). ``override=True`` with a ``reason`` moves anyway: admins only, marked in the
        audit log.
        """
        return self.backend.transition(
            name,
            version,
            stage,
            actor=self._actor(actor),
            reason=reason,
            keep_previous=keep_previous,
            override=override,
        )

    def delete_version(
        self, name: str, version: int, *, actor: str | None = None, reason: str = ""
    ) -> ModelVersion:
        return self.backend.delete_version(name, version, actor=self._actor(actor), reason=reason)

    # --- aliases, history, URIs ------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None = None,
        reason: str = "",
        override: bool = False,
    ) -> ModelVersion:
        """Point ``alias`` at ``version``; a protected alias needs what a protected stage needs (see :meth:`transition`)."""
        return self.backend.set_alias(
            name, alias, version, actor=self._actor(actor), reason=reason, override=override
        )

    def delete_alias(self, name: str, alias: str, *, actor: str | None = None, reason: str = "") -> None:
        self.backend.delete_alias(name, alias, actor=self._actor(actor), reason=reason)

    def history(self, name: str, version: int | None = None) -> list[AuditEntry]:
        return self.backend.history(name, version)

    # --- promotion policy and load-test reports ------------------------------------------------

    def get_policy(self, name: str) -> PromotionPolicy:
        """The model's promotion policy: protected stages and aliases, SLO, report age and load shape."""
        return self.backend.get_policy(name)

    def set_policy(
        self,
        name: str,
        *,
        protected_stages: Sequence[str] | None = None,
        protected_aliases: Sequence[str] | None = None,
        slo: str | None = None,
        max_report_age_s: float | None = None,
        min_users: int | None = None,
        min_duration_s: float | None = None,
        require_image: bool | None = None,
        budget: str | None = None,
        require_build: bool | None = None,
        actor: str | None = None,
        reason: str = "",
    ) -> PromotionPolicy:
        """Change the given fields of the model's policy (``None`` keeps one; ``slo=""`` clears the SLO).

        ``budget`` bounds a build's figures (``image_mb<=200,cold_start_s<=3``; ``""`` clears it);
        ``require_build`` makes a protected move also need a passing build record.
        """
        change = PolicyChange(
            protected_stages=protected_stages,
            protected_aliases=protected_aliases,
            slo=slo,
            max_report_age_s=max_report_age_s,
            min_users=min_users,
            min_duration_s=min_duration_s,
            require_image=require_image,
            budget=budget,
            require_build=require_build,
        )
        return self.backend.set_policy(name, change, actor=self._actor(actor), reason=reason)

    def add_loadtest_report(
        self,
        name: str,
        version: int,
        document: Mapping[str, Any],
        html: str,
        *,
        actor: str | None = None,
    ) -> LoadTestReport:
        """Store a load-test report with the version; the registry judges it and answers with its verdict."""
        return self.backend.add_loadtest_report(name, version, document, html, actor=self._actor(actor))

    def loadtest_reports(self, name: str, version: int) -> list[LoadTestReport]:
        """The version's reports, newest first, judged against the policy in force now."""
        return self.backend.loadtest_reports(name, version)

    def loadtest_report(self, name: str, version: int, report_id: str) -> dict[str, Any]:
        """One report's full document, with the registry's judgement under ``record``."""
        return self.backend.loadtest_report(name, version, report_id)

    def loadtest_report_page(self, name: str, version: int, report_id: str) -> str:
        """One report's self-contained HTML page, as its load generator rendered it."""
        return self.backend.loadtest_report_page(name, version, report_id)

    # --- build records -------------------------------------------------------------------------

    def add_build_record(
        self, name: str, version: int, document: Mapping[str, Any], *, actor: str | None = None
    ) -> BuildRecord:
        """Record an image built of the version (``quayside build`` sends it); answered judged by the policy."""
        return self.backend.add_build_record(name, version, document, actor=self._actor(actor))

    def build_records(self, name: str, version: int) -> list[BuildRecord]:
        """The version's build records, newest first, judged against the policy in force now."""
        return self.backend.build_records(name, version)

    def build_record(self, name: str, version: int, build_id: str) -> BuildRecord:
        """One build record, judged against the policy in force now."""
        return self.backend.build_record(name, version, build_id)

    def resolve(self, uri: str | Path) -> ResolvedModel:
        """The local package directory of a path or model URI (see :mod:`quayside.registry.uris`)."""
        return resolve_model_uri(uri, self.backend, self.run_artifact_path)
