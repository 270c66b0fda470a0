"""``quayside build MODEL_URI``: a slim serving image of a model, built by a Docker engine."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from quayside.cli.console import err, out
from quayside.cli.tables import print_build, print_checked_build
from quayside.compose.images import BuildOptions, build_checked_image, write_build_context
from quayside.compose.models import ModelSource
from quayside.packager.docker.context import DEFAULT_BASE_IMAGE
from quayside.packager.docker.smoke import DEFAULT_SMOKE_TIMEOUT_S
from quayside.slo import BUDGET_HELP


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
    smoke: Annotated[
        bool,
        typer.Option(
            "--smoke/--no-smoke",
            help="Start the built image and check its answers to the input example against the golden "
            "outputs (--no-smoke skips it; the build record says so).",
        ),
    ] = True,
    smoke_timeout: Annotated[
        float, typer.Option(help="Seconds the image gets to become ready in the smoke test.", min=1)
    ] = DEFAULT_SMOKE_TIMEOUT_S,
    budget: Annotated[
        str | None,
        typer.Option(
            help=f"{BUDGET_HELP} Default: the registered model's budget (quayside registry budget set).",
            show_default=False,
        ),
    ] = None,
    push: Annotated[
        bool,
        typer.Option(
            "--push", help="Push the image to the registry its tag names (e.g. --tag 127.0.0.1:5000/iris:1)."
        ),
    ] = False,
    trust: Annotated[
        bool,
        typer.Option(
            "--trust",
            help="Let the image serve a pickled native model (its code runs in the server); without it, "
            "such a package must be converted to ONNX first.",
        ),
    ] = False,
) -> None:
    """Build a slim serving image of a model with a Docker engine.

    The build context holds a multi-stage Dockerfile, the verified model package
    and a wheelhouse resolved here for linux/amd64 CPython 3.11 (cached under
    $QUAYSIDE_HOME/wheelhouse): the serving runtime and the model's runtime
    requirements only (ONNX Runtime for an ONNX-servable model). The image runs
    as a non-root user, answers on $PORT with $WORKERS processes, and checks its
    own health on /v2/health/ready.

    Then the image is smoke-tested: started on a free port (host network, its own
    non-root user), timed from start to ready (cold start) and on its first answer,
    and its answers to the input example over /invocations and V2 are compared
    with the golden outputs saved in the package. A failed smoke test or a figure
    over --budget fails the build and takes back the tag it made. A build of a
    registered version (models:/NAME/VERSION) is recorded in the registry
    (quayside registry builds NAME VERSION); after --push, deployments of that
    version use the image by its repository digest.
    """
    source = ModelSource.resolve(model_uri)
    if context_only is not None:
        write_build_context(source, context_only, base_image=base_image, trust=trust, log=err.print)
        out.print(f"wrote the build context to {context_only}")
        out.print(f"build it with: docker build -t {tag or source.default_tag()} {context_only}")
        return
    options = BuildOptions(
        no_cache=no_cache, smoke=smoke, smoke_timeout_s=smoke_timeout, budget=budget, push=push, trust=trust
    )
    checked = build_checked_image(
        source, tag=tag or source.default_tag(), base_image=base_image, options=options, log=err.print
    )
    print_build(checked.build, base_image)
    print_checked_build(checked)
