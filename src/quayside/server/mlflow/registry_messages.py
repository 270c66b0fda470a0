"""MLflow's model-registry wire messages: the request bodies the registry routes read and the responses they render.

Request models parse MLflow's JSON (versions as strings, ``{"key", "value"}`` tag
lists); renderers turn Quayside's :class:`~quayside.registry.entities.RegisteredModel`
and :class:`~quayside.registry.entities.ModelVersion` into MLflow's ``RegisteredModel``
and ``ModelVersion`` messages (stages in MLflow's names, :mod:`~quayside.server.mlflow.stages`).
Nothing here reads or writes a store.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, Field

from quayside.errors import UsageError
from quayside.registry.entities import ModelVersion, RegisteredModel, check_version
from quayside.server.mlflow.messages import KeyValue, excerpt, key_values
from quayside.server.mlflow.stages import MLFLOW_STAGES, to_mlflow, to_quayside

READY = "READY"
"""A version's MLflow status: Quayside registers a version whole, in the request that creates it."""

# MLflow's server limits (mlflow.store.model_registry): a larger max_results is refused.
MAX_MODELS_PER_PAGE = 1000
DEFAULT_MODELS_PER_PAGE = 100
MAX_VERSIONS_PER_PAGE = 200_000
DEFAULT_VERSIONS_PER_PAGE = 10_000

_WHOLE_NUMBER = re.compile("[0-9]{1,10}")


def _as_text(value: Any) -> Any:
    """MLflow sends versions as strings; a JSON number is taken too (MLflow's own server does)."""
    return str(value) if isinstance(value, int) and not isinstance(value, bool) else value


VersionText = Annotated[str, BeforeValidator(_as_text)]


def version_number(text: str) -> int:
    """A version number from MLflow's string, or MLflow's 400 for one that is not a whole number."""
    if _WHOLE_NUMBER.fullmatch(text.strip()) is None:
        raise UsageError(f"Model version must be an integer, got '{excerpt(text)}'")
    return check_version(int(text))


def page_size(max_results: int, limit: int) -> int:
    if not 1 <= max_results <= limit:
        raise UsageError(
            f"Invalid value for request parameter max_results: it must be a positive integer of at most "
            f"{limit}, but got {max_results}"
        )
    return max_results


# --- request bodies --------------------------------------------------------------------------


class ModelRef(BaseModel):
    name: str


class ModelCreate(ModelRef):
    tags: list[KeyValue] = Field(default_factory=list)
    description: str = ""
    deployment_job_id: str | None = None


class ModelRename(ModelRef):
    new_name: str


class ModelUpdate(ModelRef):
    description: str | None = None
    deployment_job_id: str | None = None


class LatestVersions(ModelRef):
    stages: list[str] = Field(default_factory=list)


class ModelTag(ModelRef):
    key: str
    value: str = ""


class ModelTagRef(ModelRef):
    key: str


class AliasRef(ModelRef):
    alias: str


class AliasSet(AliasRef):
    version: VersionText


class VersionCreate(ModelRef):
    source: str = ""
    run_id: str | None = None
    tags: list[KeyValue] = Field(default_factory=list)
    run_link: str = ""
    description: str = ""
    model_id: str | None = None


class VersionRef(ModelRef):
    version: VersionText

    @property
    def number(self) -> int:
        return version_number(self.version)


class VersionUpdate(VersionRef):
    description: str | None = None


class VersionTag(VersionRef):
    key: str
    value: str = ""


class VersionTagRef(VersionRef):
    key: str


class Transition(VersionRef):
    stage: str
    archive_existing_versions: bool = False


# --- responses -------------------------------------------------------------------------------


def model_version_out(version: ModelVersion) -> dict[str, Any]:
    """A version as MLflow's ``ModelVersion`` message (always ``READY``: registration is whole or nothing)."""
    return {
        "name": version.name,
        "version": str(version.version),
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
        "current_stage": to_mlflow(version.stage),
        "description": version.description,
        "source": version.source,
        "run_id": version.source_run_id or "",
        "status": READY,
        "tags": key_values(version.tags),
        "aliases": list(version.aliases),
        "run_link": "",
    }


def latest_per_stage(versions: Iterable[ModelVersion], stages: Sequence[str] = ()) -> list[ModelVersion]:
    """The newest live version in each of ``stages`` (MLflow's names; all four when empty), in MLflow's order."""
    wanted = [to_mlflow(to_quayside(s)) for s in stages] or list(MLFLOW_STAGES)
    newest: dict[str, ModelVersion] = {}
    for version in versions:
        if version.deleted:
            continue
        stage = to_mlflow(version.stage)
        if stage not in newest or version.version > newest[stage].version:
            newest[stage] = version
    return [newest[stage] for stage in dict.fromkeys(wanted) if stage in newest]


def registered_model_out(model: RegisteredModel, versions: Iterable[ModelVersion] = ()) -> dict[str, Any]:
    """A model as MLflow's ``RegisteredModel`` message; ``latest_versions`` are the newest per stage of ``versions``."""
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
        "description": model.description,
        "latest_versions": [model_version_out(v) for v in latest_per_stage(versions)],
        "tags": key_values(model.tags),
        "aliases": [{"alias": alias, "version": str(v)} for alias, v in sorted(model.aliases.items())],
    }


def model_attributes(model: RegisteredModel) -> dict[str, Any]:
    """What a registered-model search filters and sorts on (:data:`~quayside.server.mlflow.registry_search.REGISTERED_MODELS`)."""
    return {
        "name": model.name,
        "creation_timestamp": model.created_at,
        "last_updated_timestamp": model.updated_at,
    }


def version_attributes(version: ModelVersion) -> dict[str, Any]:
    """What a model-version search filters and sorts on (:data:`~quayside.server.mlflow.registry_search.MODEL_VERSIONS`)."""
    return {
        "name": version.name,
        "version_number": version.version,
        "run_id": version.source_run_id or "",
        "source_path": version.source,
        "creation_timestamp": version.created_at,
        "last_updated_timestamp": version.updated_at,
    }
