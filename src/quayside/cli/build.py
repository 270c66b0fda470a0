"""``quayside build MODEL_URI``: a slim serving image of a model, built by a Docker engine."""

from __future__ import annotations

import re
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from quayside import __version__
from quayside.cli.console import err, human_size, out, styled
from quayside.cli.serve import resolve_registered
from quayside.config import load_settings
from quayside.packager.docker.context import (
    DEFAULT_BASE_IMAGE,
    ModelImage,
    image_labels,
    image_requirements,
    render_dockerfile,
    write_context,
)
from quayside.packager.manifest import Manifest, PackageReader

if TYPE_CHECKING:
    from quayside.packager.docker.build import BuildResult


@dataclass(frozen=True)
class ModelSource:
    """A model URI resolved to a verified package, and the version its labels carry."""

    uri: str
    path: Path
    manifest: Manifest
    version: str | None
    registered_name: str | None = None

    @classmethod
    def resolve(cls, model_uri: str) -> ModelSource:
        path, name, version = resolve_registered(model_uri)  # registry name and version, for models:/ URIs
        reader = PackageReader.open(Path(path))  # every digest checked before anything is copied
        return cls(model_uri, Path(path), reader.manifest, version, name)

    def image(self) -> ModelImage:
        return ModelImage.of(
            self.manifest, version=self.version, source_uri=self.uri, name=self.registered_name
        )

    def default_tag(self) -> str:
        """``quayside/<name>:<version or digest>``: one tag per package content."""
        served = self.registered_name or self.manifest.name
        name = re.sub(r"[^a-z0-9._-]+", "-", served.lower()).strip(".-_") or "model"
        return f"quayside/{name}:{self.version or self.manifest.digest()[:12]}"


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def write_build_context(source: ModelSource, directory: Path, *, base_image: str) -> Path:
    """Resolve the wheelhouse (cached on the host) and lay out the build context in ``directory``."""
    import quayside
    from quayside.packager.docker.wheelhouse import quayside_wheel, resolve_wheelhouse

    model = source.image()
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
    settings = load_settings()
    wheels = resolve_wheelhouse(
        image_requirements(source.manifest, _installed_version), settings.home / "wheelhouse", log=err.print
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


def build_model_image(source: ModelSource, *, tag: str, base_image: str, no_cache: bool) -> BuildResult:
    """Build the image of ``source`` (engine checked first: no wheel download for nothing)."""
    from quayside.packager.docker.build import build_image, docker_client

    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="quayside-context-") as scratch:
        context = write_build_context(source, Path(scratch) / "context", base_image=base_image)
        err.print(styled("building ", (tag, "bold"), f" from {source.uri}"))
        result = build_image(
            client, context, tag=tag, base_image=base_image, no_cache=no_cache, log=err.print
        )
    cached = sum(1 for _, hit in result.steps if hit)
    out.print(f"built {result.tag} ({result.image_id.removeprefix('sha256:')[:12]})")
    out.print(
        f"image size {human_size(result.size)}, {human_size(result.size_above_base)} above the base "
        f"image {base_image} ({human_size(result.base_size)}); {cached}/{len(result.steps)} steps from cache"
    )
    return result


def build(
    model_uri: Annotated[
        str, typer.Argument(help="Model package directory or model URI.", show_default=False)
    ],
    tag: Annotated[
        str | None,
        typer.Option("--tag", "-t", help="IMAGE[:TAG] to build (default quayside/NAME:VERSION-OR-DIGEST)."),
    ] = None,
    base_image: Annotated[
        str, typer.Option(help="Base image; must run CPython 3.11 on glibc (linux/amd64).")
    ] = DEFAULT_BASE_IMAGE,
    context_only: Annotated[
        Path | None,
        typer.Option(
            help="Write the build context to this (new or empty) directory and stop: no engine needed."
        ),
    ] = None,
    no_cache: Annotated[bool, typer.Option("--no-cache", help="Build every layer afresh.")] = False,
) -> None:
    """Build a slim serving image of a model with a Docker engine.

    The build context holds a multi-stage Dockerfile, the verified model package
    and a wheelhouse resolved here for linux/amd64 CPython 3.11 (cached under
    $QUAYSIDE_HOME/wheelhouse): the serving runtime and the model's runtime
    requirements only (ONNX Runtime for an ONNX-servable model). The image runs
    as a non-root user, answers on $PORT with $WORKERS processes, and checks its
    own health on /v2/health/ready.
    """
    source = ModelSource.resolve(model_uri)
    if context_only is not None:
        write_build_context(source, context_only, base_image=base_image)
        out.print(f"wrote the build context to {context_only}")
        out.print(f"build it with: docker build -t {tag or source.default_tag()} {context_only}")
        return
    build_model_image(source, tag=tag or source.default_tag(), base_image=base_image, no_cache=no_cache)
