"""Model URIs, resolved in this one place to a local package directory.

    path/to/package                  a package directory
    runs:/<run_id>/<artifact path>   a package logged in a run (through an injected lookup)
    models:/<name>/<version>         a registered version, e.g. models:/iris/3
    models:/<name>/<stage>           the newest version in a stage, e.g. models:/iris/production
    models:/<name>/latest            the newest live version
    models:/<name>@<alias>           the version an alias points at, e.g. models:/iris@champion

The registry does not know about runs, so ``runs:/`` needs a ``run_artifact_path``
callable from whoever composes tracking and the registry (the CLI, the server,
``quayside.load_model``). Every error names the URI and the part that failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from quayside.errors import NotFoundError, PackageIntegrityError, QuaysideError, UsageError
from quayside.names import ALIAS_PATTERN, MODEL_NAME_PATTERN
from quayside.packager.manifest import read_manifest
from quayside.registry.backend import RegistryBackend
from quayside.registry.entities import ModelVersion
from quayside.registry.stages import Stage

SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]+):/")

RunArtifactPath = Callable[[str, str], Path]
"""``(run_id, artifact_path) -> local directory`` of a package logged in a run."""

URI_FORMS = (
    "a package path, runs:/<run_id>/<path>, models:/<name>/<version>, models:/<name>/<stage>, "
    "models:/<name>/latest or models:/<name>@<alias>"
)


@dataclass(frozen=True)
class ModelUri:
    """A parsed model URI; which fields are set depends on ``kind``."""

    raw: str
    kind: Literal["path", "runs", "models"]
    path: Path | None = None
    run_id: str | None = None
    artifact_path: str | None = None
    name: str | None = None
    version: int | None = None
    stage: Stage | None = None
    alias: str | None = None
    latest: bool = False


@dataclass(frozen=True)
class ResolvedModel:
    """Where a URI's package lies locally, and the registered version it is (for ``models:/``)."""

    uri: str
    path: Path
    version: ModelVersion | None = None
    run_id: str | None = None


def is_model_uri(value: str) -> bool:
    return value.startswith(("models:/", "runs:/"))


def parse_model_uri(uri: str) -> ModelUri:
    """Split a URI into its parts, or a 400 naming the part that is malformed."""
    if not isinstance(uri, str) or not uri.strip():
        raise UsageError(f"a model URI is needed: {URI_FORMS}")
    if uri.startswith("runs:/"):
        return _parse_runs(uri)
    if uri.startswith("models:/"):
        return _parse_models(uri)
    scheme = SCHEME.match(uri)
    if scheme is not None:
        scheme = scheme.group(1)
        raise UsageError(f"'{uri}': the scheme '{scheme}' is not one Quayside resolves; use {URI_FORMS}")
    return ModelUri(uri, "path", path=Path(uri).expanduser())


def _parse_runs(uri: str) -> ModelUri:
    rest = uri.removeprefix("runs:/").lstrip("/")
    run_id, _, artifact_path = rest.partition("/")
    if not run_id:
        raise UsageError(f"'{uri}': the run id is missing (runs:/<run_id>/<artifact path>)")
    artifact_path = artifact_path.strip("/")
    if not artifact_path:
        raise UsageError(
            f"'{uri}': the artifact path after the run id is missing (runs:/<run_id>/<artifact path>)"
        )
    return ModelUri(uri, "runs", run_id=run_id, artifact_path=artifact_path)


def _parse_models(uri: str) -> ModelUri:
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        _check_name(uri, name)
        if not ALIAS_PATTERN.fullmatch(alias):
            raise UsageError(f"'{uri}': '{alias}' is not an alias name (letters, digits, '_' and '-')")
        return ModelUri(uri, "models", name=name, alias=alias)
    name, slash, reference = rest.partition("/")
    _check_name(uri, name)
    if not slash or not reference:
        raise UsageError(
            f"'{uri}': say which version: models:/{name}/<version>, /<stage>, /latest or @<alias>"
        )
    if reference.isascii() and reference.isdigit():  # isdigit() alone takes '²', which int() refuses
        version = int(reference)
        if version < 1:
            raise UsageError(f"'{uri}': versions are numbered from 1")
        return ModelUri(uri, "models", name=name, version=version)
    if reference == "latest":
        return ModelUri(uri, "models", name=name, latest=True)
    try:
        return ModelUri(uri, "models", name=name, stage=Stage(reference.lower()))
    except ValueError:
        stages = ", ".join(s.value for s in Stage)
        raise UsageError(
            f"'{uri}': '{reference}' is neither a version number, 'latest', nor a stage ({stages})"
        ) from None


def _check_name(uri: str, name: str) -> None:
    if not name:
        raise UsageError(f"'{uri}': the model name is missing")
    if not MODEL_NAME_PATTERN.fullmatch(name):
        raise UsageError(f"'{uri}': '{name}' is not a model name (letters, digits, '_', '-' and '.')")


def find_version(parsed: ModelUri, registry: RegistryBackend) -> ModelVersion:
    """The registered version a ``models:/`` URI names."""
    assert parsed.kind == "models" and parsed.name is not None
    try:
        if parsed.alias is not None:
            return registry.get_version_by_alias(parsed.name, parsed.alias)
        if parsed.version is not None:
            found = registry.get_version(parsed.name, parsed.version)
            if found.deleted:
                raise NotFoundError(f"version {parsed.version} of '{parsed.name}' was deleted")
            return found
        stage = parsed.stage.value if parsed.stage is not None else None
        return registry.get_latest_version(parsed.name, stage)
    except QuaysideError as e:
        raise _about(parsed.raw, e) from None


def resolve_model_uri(
    uri: str | Path,
    registry: RegistryBackend | None = None,
    run_artifact_path: RunArtifactPath | None = None,
) -> ResolvedModel:
    """The local package directory a path or URI names (a registered one is checked against its digest)."""
    parsed = parse_model_uri(str(uri))
    if parsed.kind == "path":
        assert parsed.path is not None
        if not parsed.path.is_dir():
            raise NotFoundError(f"no model package at '{uri}': not a directory (and not a model URI)")
        return ResolvedModel(str(uri), parsed.path)
    if parsed.kind == "runs":
        assert parsed.run_id is not None and parsed.artifact_path is not None
        if run_artifact_path is None:
            raise UsageError(f"'{uri}': runs:/ URIs need the tracking store, which is not available here")
        try:
            path = run_artifact_path(parsed.run_id, parsed.artifact_path)
        except QuaysideError as e:
            raise _about(parsed.raw, e) from None
        return ResolvedModel(parsed.raw, Path(path), run_id=parsed.run_id)
    if registry is None:
        raise UsageError(f"'{uri}': models:/ URIs need the registry, which is not available here")
    version = find_version(parsed, registry)
    try:
        path = registry.package_dir(version.name, version.version)
    except QuaysideError as e:
        raise _about(parsed.raw, e) from None
    check_registered_package(parsed.raw, path, version)
    return ResolvedModel(parsed.raw, path, version=version, run_id=version.source_run_id)


def check_registered_package(uri: str, path: Path, version: ModelVersion) -> None:
    """Refuse a registered copy whose manifest is not the one registered (loading then checks every file)."""
    try:
        digest = read_manifest(path).digest()
    except QuaysideError as e:
        raise PackageIntegrityError(
            f"'{uri}': the registered package of version {version.version} of '{version.name}' "
            f"is unreadable: {e.message}"
        ) from None
    if digest != version.digest:
        raise PackageIntegrityError(
            f"'{uri}': the registered package of version {version.version} of '{version.name}' was altered "
            f"(manifest digest {digest[:12]}…, registered {version.digest[:12]}…)"
        )


def _about(uri: str, error: QuaysideError) -> QuaysideError:
    """The same kind of error, its message prefixed with the URI being resolved."""
    cls = type(error)
    wrapped = cls.__new__(cls)
    QuaysideError.__init__(wrapped, f"cannot resolve '{uri}': {error.message}")
    return wrapped
