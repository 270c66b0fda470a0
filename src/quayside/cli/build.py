"""``quayside build MODEL_URI``: a slim serving image of a model, built by a Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, out
from quayside.cli.tables import print_build
from quayside.compose.images import build_model_image, write_build_context
from quayside.compose.models import ModelSource
from quayside.packager.docker.context import DEFAULT_BASE_IMAGE


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
        write_build_context(source, context_only, base_image=base_image, log=err.print)
        out.print(f"wrote the build context to {context_only}")
        out.print(f"build it with: docker build -t {tag or source.default_tag()} {context_only}")
        return
    result = build_model_image(
        source, tag=tag or source.default_tag(), base_image=base_image, no_cache=no_cache, log=err.print
    )
    print_build(result, base_image)
