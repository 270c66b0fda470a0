"""The REST registry backend: the same operations as the SQL store, over HTTP to ``quayside server``.

Errors come back as the server's ``{"error": {"code", "message"}}`` and are raised
again as the same :class:`~quayside.errors.QuaysideError` subclass. Packages travel
as tar streams: registering uploads one, resolving a version downloads it once into
the package cache keyed by its digest (:mod:`quayside.artifacts.cache`: verified before it
is kept; loading verifies every file again).
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx

from quayside.artifacts.cache import PackageCache
from quayside.names import check_alias, check_model_name
from quayside.packager.archive import extract_tar
from quayside.registry.artifacts import iter_tar
from quayside.registry.builds import BuildRecord, check_build_id
from quayside.registry.entities import (
    AuditEntry,
    ModelVersion,
    RegisteredModel,
    check_version,
)
from quayside.registry.loadtests import LoadTestReport, check_report_id
from quayside.registry.policy import PolicyChange, PromotionPolicy
from quayside.restclient import JsonApi

API_PREFIX = "/api/registry"


def _segment(value: Any) -> str:
    return quote(str(value), safe="")


class RestRegistry:
    """The registry through a ``quayside server``; see :class:`RegistryBackend`."""

    def __init__(
        self, base_url: str, cache_dir: Path, timeout_s: float = 30.0, *, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.cache = PackageCache(cache_dir)
        self._api = JsonApi(
            self.base_url, API_PREFIX, what="registry server", timeout_s=timeout_s, token=token
        )

    @property
    def authenticated(self) -> bool:
        """Whether requests carry an API token (the server then knows who acts)."""
        return "authorization" in self._api.http.headers

    def close(self) -> None:
        self._api.close()

    # --- transport -------------------------------------------------------------------------

    def _request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        return self._api.request(method, url, **kwargs)

    def _json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self._api.json(method, url, **kwargs)

    @staticmethod
    def _model(name: str) -> str:
        # Checked here too: a name with '/' would otherwise reach the server as another route.
        return f"/models/{_segment(check_model_name(name))}"

    def _version_url(self, name: str, version: int) -> str:
        return f"{self._model(name)}/versions/{check_version(version)}"

    # --- models ----------------------------------------------------------------------------

    def create_model(
        self,
        name: str,
        description: str = "",
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool = False,
    ) -> RegisteredModel:
        body = {
            "name": name,
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "allow_multiple_production": allow_multiple_production,
        }
        return RegisteredModel.from_dict(self._json("POST", "/models", json=body))

    def get_model(self, name: str) -> RegisteredModel:
        return RegisteredModel.from_dict(self._json("GET", self._model(name)))

    def list_models(self) -> list[RegisteredModel]:
        return [RegisteredModel.from_dict(m) for m in self._json("GET", "/models")["models"]]

    def update_model(
        self,
        name: str,
        *,
        description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
    ) -> RegisteredModel:
        body = {
            "description": description,
            "tags": {k: str(v) for k, v in (tags or {}).items()},
            "allow_multiple_production": allow_multiple_production,
        }
        return RegisteredModel.from_dict(self._json("PATCH", self._model(name), json=body))

    def delete_model(self, name: str, *, actor: str | None, reason: str = "") -> None:
        self._request("DELETE", self._model(name), params={"actor": actor, "reason": reason})

    # --- versions --------------------------------------------------------------------------

    def register_version(
        self,
        name: str,
        package: Path,
        *,
        actor: str | None,
        source: str | None = None,
        source_run_id: str | None = None,
        description: str = "",
        reason: str = "",
        model_description: str | None = None,
        tags: Mapping[str, Any] | None = None,
        allow_multiple_production: bool | None = None,
    ) -> ModelVersion:
        params: dict[str, Any] = {
            "actor": actor,
            "source": source or str(package),
            "description": description,
            "reason": reason,
        }
        optional = {
            "source_run_id": source_run_id,
            "model_description": model_description,
            "allow_multiple_production": allow_multiple_production,
        }
        params |= {k: v for k, v in optional.items() if v is not None}
        for key, value in (tags or {}).items():
            params.setdefault("tag", []).append(f"{key}={value}")
        body = self._json(
            "POST",
            f"{self._model(name)}/versions",
            params=params,
            content=iter_tar(Path(package)),
            headers={"content-type": "application/x-tar"},
        )
        return ModelVersion.from_dict(body)

    def get_version(self, name: str, version: int) -> ModelVersion:
        return ModelVersion.from_dict(self._json("GET", self._version_url(name, version)))

    def list_versions(self, name: str, *, include_deleted: bool = False) -> list[ModelVersion]:
        body = self._json("GET", f"{self._model(name)}/versions", params={"include_deleted": include_deleted})
        return [ModelVersion.from_dict(v) for v in body["versions"]]

    def get_version_by_alias(self, name: str, alias: str) -> ModelVersion:
        return ModelVersion.from_dict(
            self._json("GET", f"{self._model(name)}/aliases/{_segment(check_alias(alias))}")
        )

    def get_latest_version(self, name: str, stage: str | None = None) -> ModelVersion:
        params = {"stage": stage} if stage is not None else {}
        return ModelVersion.from_dict(self._json("GET", f"{self._model(name)}/latest", params=params))

    def package_dir(self, name: str, version: int) -> Path:
        """A local copy of the version's package, downloaded once per digest into the package cache."""
        registered = self.get_version(name, version)
        url = self._version_url(name, version) + "/package"

        def download(folder: Path) -> None:
            with tempfile.TemporaryFile() as spool:
                self._download(url, spool)
                spool.seek(0)
                extract_tar(spool, folder)

        return self.cache.fill(registered.digest, download, source=f"{self.base_url}{API_PREFIX}{url}")

    def _download(self, url: str, spool: Any) -> None:
        with self._api.stream("GET", url) as response:
            for chunk in response.iter_bytes(1 << 20):
                spool.write(chunk)

    def update_version(self, name: str, version: int, *, description: str) -> ModelVersion:
        body = {"description": description}
        return ModelVersion.from_dict(self._json("PATCH", self._version_url(name, version), json=body))

    def transition(
        self,
        name: str,
        version: int,
        stage: str,
        *,
        actor: str | None,
        reason: str = "",
        keep_previous: bool = False,
        override: bool = False,
    ) -> ModelVersion:
        body = {
            "stage": stage,
            "actor": actor,
            "reason": reason,
            "keep_previous": keep_previous,
            "override": override,
        }
        url = self._version_url(name, version) + "/transition"
        return ModelVersion.from_dict(self._json("POST", url, json=body))

    def delete_version(self, name: str, version: int, *, actor: str | None, reason: str = "") -> ModelVersion:
        params = {"actor": actor, "reason": reason}
        return ModelVersion.from_dict(self._json("DELETE", self._version_url(name, version), params=params))

    # --- aliases and audit ---------------------------------------------------------------------

    def set_alias(
        self,
        name: str,
        alias: str,
        version: int,
        *,
        actor: str | None,
        reason: str = "",
        override: bool = False,
    ) -> ModelVersion:
        body = {"version": version, "actor": actor, "reason": reason, "override": override}
        url = f"{self._model(name)}/aliases/{_segment(check_alias(alias))}"
        return ModelVersion.from_dict(self._json("PUT", url, json=body))

    def delete_alias(self, name: str, alias: str, *, actor: str | None, reason: str = "") -> None:
        url = f"{self._model(name)}/aliases/{_segment(check_alias(alias))}"
        self._request("DELETE", url, params={"actor": actor, "reason": reason})

    # --- promotion policy and load-test reports ------------------------------------------------

    def get_policy(self, name: str) -> PromotionPolicy:
        return PromotionPolicy.from_dict(self._json("GET", f"{self._model(name)}/policy"))

    def set_policy(
        self, name: str, change: PolicyChange, *, actor: str | None, reason: str = ""
    ) -> PromotionPolicy:
        body = {"actor": actor, "reason": reason, **change.to_dict()}
        return PromotionPolicy.from_dict(self._json("PATCH", f"{self._model(name)}/policy", json=body))

    def add_loadtest_report(
        self, name: str, version: int, document: Mapping[str, Any], html: str, *, actor: str | None
    ) -> LoadTestReport:
        body = {"report": dict(document), "html": html, "actor": actor}
        url = self._version_url(name, version) + "/loadtests"
        return LoadTestReport.from_dict(self._json("POST", url, json=body))

    def loadtest_reports(self, name: str, version: int) -> list[LoadTestReport]:
        body = self._json("GET", self._version_url(name, version) + "/loadtests")
        return [LoadTestReport.from_dict(r) for r in body["reports"]]

    def loadtest_report(self, name: str, version: int, report_id: str) -> dict[str, Any]:
        url = self._version_url(name, version) + f"/loadtests/{_segment(check_report_id(report_id))}"
        return dict(self._json("GET", url))

    def loadtest_report_page(self, name: str, version: int, report_id: str) -> str:
        url = self._version_url(name, version) + f"/loadtests/{_segment(check_report_id(report_id))}/html"
        return self._request("GET", url).text

    def add_build_record(
        self, name: str, version: int, document: Mapping[str, Any], *, actor: str | None
    ) -> BuildRecord:
        url = self._version_url(name, version) + "/builds"
        params = {"actor": actor} if actor is not None else {}
        return BuildRecord.from_dict(self._json("POST", url, json=dict(document), params=params))

    def build_records(self, name: str, version: int) -> list[BuildRecord]:
        body = self._json("GET", self._version_url(name, version) + "/builds")
        return [BuildRecord.from_dict(b) for b in body["builds"]]

    def build_record(self, name: str, version: int, build_id: str) -> BuildRecord:
        url = self._version_url(name, version) + f"/builds/{_segment(check_build_id(build_id))}"
        return BuildRecord.from_dict(self._json("GET", url))

    def history(self, name: str, version: int | None = None) -> list[AuditEntry]:
        params = {"version": version} if version is not None else {}
        body = self._json("GET", f"{self._model(name)}/history", params=params)
        return [AuditEntry.from_dict(e) for e in body["entries"]]
