"""Building a rendered context into an image through the Docker Engine API (``docker`` SDK).

The classic builder is used (``client.api.build``): it needs no frontend image
from a registry, and its stream says per step whether the layer came from the
cache, which the build summary reports.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from quayside.errors import MissingExtraError, UnavailableError, UsageError

Log = Callable[[str], None]

ENGINE_SCRIPT = "scripts/docker-engine.sh"
_STEP = re.compile(r"^Step (\d+)/(\d+) : (.*)$")


def engine_unreachable_message(where: str) -> str:
    return (
        f"no Docker engine is reachable at {where}: start one (on Debian, as root: bash {ENGINE_SCRIPT} "
        "installs and starts dockerd and makes a local Python base image) or point DOCKER_HOST at one; "
        "`quayside build MODEL --context-only DIR` writes the build context without an engine"
    )


def docker_client() -> Any:
    """A client of the engine ``DOCKER_HOST`` (or the default socket) names, checked with a ping."""
    try:
        import docker
        import requests
        from docker.errors import DockerException
    except ImportError as e:
        raise MissingExtraError("deploy", "building images and running containers") from e
    where = os.environ.get("DOCKER_HOST") or "the default socket (unix:///var/run/docker.sock)"
    try:
        client = docker.from_env(timeout=120)
        client.ping()
    except (DockerException, requests.RequestException, OSError):
        raise UnavailableError(engine_unreachable_message(where)) from None
    return client


@dataclass
class BuildResult:
    """What the engine made: the image, its size against the base, and which steps the cache served."""

    tag: str
    image_id: str
    size: int
    base_size: int
    steps: list[tuple[str, bool]] = field(default_factory=list)
    """(instruction, served from cache) in build order."""

    @property
    def size_above_base(self) -> int:
        return self.size - self.base_size

    def cached(self, instruction_prefix: str) -> bool:
        """Whether every step starting with this instruction text came from the cache."""
        matching = [cached for text, cached in self.steps if text.startswith(instruction_prefix)]
        return bool(matching) and all(matching)


def build_image(
    client: Any, context_dir: Path, *, tag: str, base_image: str, no_cache: bool, log: Log
) -> BuildResult:
    """Build the context, streaming the engine's progress to ``log``; raise with the engine's reason."""
    from docker.errors import APIError, ImageNotFound

    steps: list[tuple[str, bool]] = []
    image_id = ""
    try:
        stream = client.api.build(
            path=str(context_dir), tag=tag, rm=True, forcerm=True, nocache=no_cache, pull=False, decode=True
        )
        for chunk in stream:
            if "error" in chunk:
                raise UsageError(_build_failure(str(chunk["error"]), base_image))
            image_id = chunk.get("aux", {}).get("ID", image_id)
            for line in str(chunk.get("stream", "")).splitlines():
                _follow(line, steps)
                if line.strip():
                    log(line.rstrip())
        image = client.images.get(tag)
        base = client.images.get(base_image)
    except ImageNotFound as e:
        raise UsageError(f"the engine has no image '{base_image}' after the build: {e.explanation}") from None
    except APIError as e:
        raise UsageError(_build_failure(str(e.explanation or e), base_image)) from None
    return BuildResult(
        tag=tag,
        image_id=image.id or image_id,
        size=int(image.attrs["Size"]),
        base_size=int(base.attrs["Size"]),
        steps=steps,
    )


def _follow(line: str, steps: list[tuple[str, bool]]) -> None:
    match = _STEP.match(line.strip())
    if match:
        steps.append((match.group(3), False))
    elif "Using cache" in line and steps:
        steps[-1] = (steps[-1][0], True)


def _build_failure(reason: str, base_image: str) -> str:
    reason = " ".join(reason.split())
    unreachable = ("pull access denied", "manifest unknown", "registry-1.docker.io", "no such host")
    if base_image in reason or any(text in reason for text in unreachable):
        return (
            f"the base image '{base_image}' is not on the engine and could not be pulled ({reason}); "
            f"without registry access, make a local one with bash {ENGINE_SCRIPT} and pass "
            "--base-image quayside/python:3.11-bookworm"
        )
    return f"the image build failed: {reason}"


# --- tags and pushes ---------------------------------------------------------------------------


def tagged_image_id(client: Any, tag: str) -> str | None:
    """The id of the image ``tag`` names on the engine now, or None."""
    from docker.errors import ImageNotFound

    try:
        return str(client.images.get(tag).id)
    except ImageNotFound:
        return None


def _split_tag(tag: str) -> tuple[str, str]:
    """``host:5000/team/iris:1`` as (``host:5000/team/iris``, ``1``); ``latest`` when no tag is given."""
    repository, _, name_tag = tag.rpartition("/")
    name, colon, version = name_tag.partition(":")
    full = f"{repository}/{name}" if repository else name
    return full, version if colon else "latest"


def retag(client: Any, image_id: str, tag: str) -> None:
    """Point ``tag`` at ``image_id``."""
    repository, version = _split_tag(tag)
    client.images.get(image_id).tag(repository, version)


def remove_tag(client: Any, tag: str) -> None:
    """Remove ``tag`` (and the image, when no other tag names it and no container uses it)."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.remove(tag)
    except ImageNotFound:
        pass
    except APIError as e:
        raise UsageError(f"could not remove the tag {tag}: {e.explanation}") from None


def push_image(client: Any, tag: str, *, log: Log) -> str:
    """Push ``tag`` to the registry it names; returns the repository digest (``repository@sha256:...``)."""
    from docker.errors import APIError

    repository, version = _split_tag(tag)
    log(f"pushing {tag}")
    digest = None
    try:
        for chunk in client.images.push(repository, tag=version, stream=True, decode=True):
            if "error" in chunk:
                raise UnavailableError(_push_failure(tag, str(chunk["error"])))
            digest = chunk.get("aux", {}).get("Digest", digest)
            status = chunk.get("status")
            if status and "id" not in chunk:
                log(str(status))
    except APIError as e:
        raise UnavailableError(_push_failure(tag, str(e.explanation or e))) from None
    if not digest:
        raise UnavailableError(f"the registry took {tag} but reported no digest for it")
    reference = f"{repository}@{digest}"
    log(f"pushed {reference}")
    return reference


def _push_failure(tag: str, reason: str) -> str:
    reason = " ".join(reason.split())
    return f"pushing {tag} failed: {reason} (is the registry running, and does the engine trust it?)"
