"""What a registry backend does; the SQL store and the REST client both do all of it.

:class:`~quayside.registry.client.RegistryClient` speaks to one of these, so the same
Python API works on a laptop's SQLite file and against a ``quayside server``.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from quayside.registry.builds import BuildRecord
from quayside.registry.entities import AuditEntry, ModelVersion, RegisteredModel
from quayside.registry.loadtests import LoadTestReport
from quayside.registry.policy import PolicyChange, PromotionPolicy


class RegistryBackend(Protocol):
    def create_model(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool = False,
    ) -> RegisteredModel: ...
    def get_model(self, name: str) -> RegisteredModel: ...
    def list_models(self) -> list[RegisteredModel]: ...
    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
    ) -> RegisteredModel: ...
    def delete_model(self, name: str, *, actor: str, reason: str = "") -> None: ...

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
    ) -> ModelVersion: ...
    def get_version(self, name: str, version: int) -> ModelVersion: ...
    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]: ...
    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion: ...
    def get_latest_version(self, name: str, stage: str | None = None) -> ModelVersion: ...
    def package_dir(self, name: str, version: int) -> Path: ...
    def update_version(self, name: str, version: int, *, description: str) -> ModelVersion: ...
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
    ) -> ModelVersion: ...
    def delete_version(self, name: str, version: int, *, actor: str, reason: str = "") -> ModelVersion: ...

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str,
        reason: str = "",
        override: bool = False,
    ) -> ModelVersion: ...
    def delete_alias(self, name: str, alias: str, *, actor: str, reason: str = "") -> None: ...

    def get_policy(self, name: str) -> PromotionPolicy: ...
    def set_policy(
        self, name: str, change: PolicyChange, *, actor: str, reason: str = ""
    ) -> PromotionPolicy: ...

    def add_loadtest_report(
        self, name: str, version: int, document: Mapping[str, Any], html: str, *, actor: str
    ) -> LoadTestReport: ...
    def loadtest_reports(self, name: str, version: int) -> list[LoadTestReport]: ...
    def loadtest_report(self, name: str, version: int, report_id: str) -> dict[str, Any]: ...
    def loadtest_report_page(self, name: str, version: int, report_id: str) -> str: ...

    def add_build_record(
        self, name: str, version: int, document: Mapping[str, Any], *, actor: str
    ) -> BuildRecord: ...
    def build_records(self, name: str, version: int) -> list[BuildRecord]: ...
    def build_record(self, name: str, version: int, build_id: str) -> BuildRecord: ...

    def history(self, name: str, version: int | None = None) -> list[AuditEntry]: ...
