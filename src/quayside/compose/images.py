"""Serving images of a model: the build context laid out, and the image built by a Docker engine.

Rendering the Dockerfile is :mod:`quayside.packager.docker.context`'s (pure); talking
to the engine is :mod:`quayside.packager.docker.build`'s. This module puts a model
source, the wheelhouse and the two together.
"""

from __future__ import annotations

import tempfile
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.models import ModelSource
from quayside.config import Settings, load_settings
from quayside.packager.docker.context import ModelImage
from quayside.packager.labels import MODEL_DIGEST_LABEL

if TYPE_CHECKING:
    from quayside.packager.docker.build import BuildResult


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def model_image(source: ModelSource) -> ModelImage:
    """What the image of ``source`` says about its model: labels, serving name and version."""
    return ModelImage.of(
        source.manifest, version=source.version, source_uri=source.uri, name=source.registered_name
    )


def write_build_context(
    source: ModelSource,
    directory: Path,
    *,
    base_image: str,
    settings: Settings | None = None,
    log: Log = no_log,
) -> Path:
    """Resolve the wheelhouse (cached on the host) and lay out the build context in ``directory``."""
    import quayside
    from quayside.packager.docker.context import (
        image_labels,
        image_requirements,
        render_dockerfile,
        write_context,
    )
    from quayside.packager.docker.wheelhouse import quayside_wheel, resolve_wheelhouse
    from quayside.version import __version__

    model = model_image(source)
    labels = image_labels(
        model,
        base_image=base_image,
        quayside_version=__version__,
        created=datetime.now(UTC).isoformat(timespec="seconds"),
    )
    # Rendered first: a value the Dockerfile refuses fails before the wheelhouse is resolved.
    dockerfile = render_dockerfile(
        base_image=base_image, model=model, labels=labels, quayside_version=__version__
    )
    settings = settings or load_settings()
    wheels = resolve_wheelhouse(
        image_requirements(source.manifest, _installed_version), settings.home / "wheelhouse", log=log
    )
    with tempfile.TemporaryDirectory(prefix="quayside-wheel-") as scratch:
        own_wheel = quayside_wheel(Path(quayside.__file__).parent, __version__, Path(scratch))
        return write_context(
            directory,
            package_root=source.path,
            manifest=source.manifest,
            wheels=[*wheels, own_wheel],
            dockerfile=dockerfile,
        )


def build_model_image(
    source: ModelSource, *, tag: str, base_image: str, no_cache: bool = False, log: Log = no_log
) -> BuildResult:
    """Build the image of ``source`` as ``tag`` (engine checked first: no wheel download for nothing)."""
    from quayside.packager.docker.build import build_image, docker_client

    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="quayside-context-") as scratch:
        context = write_build_context(source, Path(scratch) / "context", base_image=base_image, log=log)
        log(f"building {tag} from {source.uri}")
        return build_image(client, context, tag=tag, base_image=base_image, no_cache=no_cache, log=log)


def ensure_image(
    client: Any, source: ModelSource, *, tag: str, base_image: str, log: Log = no_log
) -> BuildResult | None:
    """Make ``tag`` hold the image of ``source``: None when it already does (same digest), else the build."""
    from docker.errors import ImageNotFound

    try:
        existing = client.images.get(tag)
        if (existing.labels or {}).get(MODEL_DIGEST_LABEL) == source.manifest.digest():
            log(f"image {tag} already holds this model; not rebuilding")
            return None
    except ImageNotFound:
        pass
    return build_model_image(source, tag=tag, base_image=base_image, log=log)
