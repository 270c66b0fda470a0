"""Serving images of a model: the build context laid out, and the image built by a Docker engine.

Rendering the Dockerfile is :mod:`quayside.packager.docker.context`'s (pure); talking
to the engine is :mod:`quayside.packager.docker.build`'s. This module puts a model
source, the wheelhouse and the two together.
"""

from __future__ import annotations

import math
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quayside.compose import Log, no_log
from quayside.compose.models import ModelSource
from quayside.config import Settings, load_settings
from quayside.errors import BuildCheckError, QuaysideError, UnavailableError, UsageError
from quayside.packager.docker.context import ModelImage
from quayside.packager.docker.smoke import DEFAULT_SMOKE_TIMEOUT_S
from quayside.packager.labels import MODEL_DIGEST_LABEL

if TYPE_CHECKING:
    from quayside.compose.clients import RegistryClient
    from quayside.packager.docker.build import BuildResult
    from quayside.packager.docker.smoke import SmokeResult
    from quayside.registry.builds import BuildRecord
    from quayside.slo import Verdict


def _installed_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def model_image(source: ModelSource, *, trust: bool = False) -> ModelImage:
    """What the image of ``source`` says about its model: labels, serving name and version."""
    return ModelImage.of(
        source.manifest,
        version=source.version,
        source_uri=source.uri,
        name=source.registered_name,
        trust=trust,
    )


def write_build_context(
    source: ModelSource,
    directory: Path,
    *,
    base_image: str,
    settings: Settings | None = None,
    trust: bool = False,
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

    model = model_image(source, trust=trust)
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
    source: ModelSource,
    *,
    tag: str,
    base_image: str,
    no_cache: bool = False,
    trust: bool = False,
    log: Log = no_log,
) -> BuildResult:
    """Build the image of ``source`` as ``tag`` (engine checked first: no wheel download for nothing).

    Only the build: :func:`build_checked_image` is what ``quayside build`` runs (smoke test,
    budget, push, build record).
    """
    from quayside.packager.docker.build import build_image, docker_client

    client = docker_client()
    with tempfile.TemporaryDirectory(prefix="quayside-context-") as scratch:
        context = write_build_context(
            source, Path(scratch) / "context", base_image=base_image, trust=trust, log=log
        )
        log(f"building {tag} from {source.uri}")
        return build_image(client, context, tag=tag, base_image=base_image, no_cache=no_cache, log=log)


@dataclass(frozen=True)
class BuildOptions:
    """How ``quayside build`` checks what it built. The defaults are the command's."""

    no_cache: bool = False
    smoke: bool = True
    smoke_timeout_s: float = DEFAULT_SMOKE_TIMEOUT_S
    budget: str | None = None
    """A budget for this build (``image_mb<=200,...``); None: the model's budget in the registry, if any."""
    push: bool = False
    trust: bool = False


@dataclass(frozen=True)
class CheckedBuild:
    """An image that was built, smoke-tested, held to its budget, perhaps pushed, and recorded."""

    build: BuildResult
    smoke: SmokeResult | None
    """None with ``smoke=False``."""
    budget: str | None
    verdict: Verdict | None
    """The budget's verdict (None without a budget)."""
    repo_digest: str | None
    record: BuildRecord | None
    """The registry's build record (None when the source is not a registered version)."""

    @property
    def reference(self) -> str:
        """What to deploy: the repository digest after a push, else the tag."""
        return self.repo_digest or self.build.tag


def build_figures(build: BuildResult, smoke: SmokeResult | None) -> dict[str, float]:
    """The figures a budget bounds (NaN where not measured)."""
    nan = float("nan")
    first = smoke.first_inference_ms if smoke is not None else None
    return {
        "image_mb": build.size / 1e6,
        "cold_start_s": smoke.cold_start_s if smoke is not None else nan,
        "first_inference_ms": nan if first is None else first,
    }


def _budget_of(source: ModelSource, options: BuildOptions, registry: RegistryClient | None) -> str | None:
    """The budget this build is held to: the given one, else the registered model's (canonical text)."""
    from quayside.slo import format_slo, parse_budget

    text = options.budget
    if text is None and registry is not None and source.registered_name is not None:
        text = registry.get_policy(source.registered_name).budget
    if text is None or not text.strip():
        return None
    objectives = parse_budget(text)
    needs_smoke = sorted({o.metric for o in objectives} - {"image_mb"})
    if needs_smoke and not options.smoke:
        raise UsageError(
            f"the budget bounds {', '.join(needs_smoke)}, which only the smoke test measures; drop --no-smoke"
        )
    return format_slo(objectives)


def _record_document(
    source: ModelSource,
    build: BuildResult,
    *,
    base_image: str,
    smoke: SmokeResult | None,
    failure: str | None,
    budget: str | None,
    repo_digest: str | None,
) -> dict[str, Any]:
    from quayside.version import __version__

    if failure is not None:
        status, detail = "failed", failure
    elif smoke is None:
        status, detail = "skipped", "built with --no-smoke: the image was not started"
    else:
        status, detail = "passed", smoke.detail
    return {
        "package_digest": source.manifest.digest(),
        "tag": build.tag,
        "image_id": build.image_id,
        "size_bytes": build.size,
        "base_image": base_image,
        "quayside_version": __version__,
        "repo_digest": repo_digest,
        "smoke": {
            "status": status,
            "cold_start_s": None if smoke is None else round(smoke.cold_start_s, 4),
            "first_inference_ms": None
            if smoke is None or smoke.first_inference_ms is None
            else round(smoke.first_inference_ms, 3),
            "detail": detail[:4000],
        },
        "budget": budget,
        "built_at": int(time.time() * 1000),
    }


def _over_budget(verdict: Verdict) -> str:
    missed = "; ".join(
        f"{r.objective.metric} is {_figure(r.measured)}, and the budget allows {r.objective}"
        for r in verdict.failed
    )
    return f"the image is over its budget: {missed}"


def _figure(value: float) -> str:
    return "not measured" if math.isnan(value) else f"{value:.4g}"


def build_checked_image(
    source: ModelSource,
    *,
    tag: str,
    base_image: str,
    options: BuildOptions = BuildOptions(),
    registry: RegistryClient | None = None,
    log: Log = no_log,
) -> CheckedBuild:
    """Build ``source`` as ``tag``, smoke-test it, hold it to its budget, push it, and record the build.

    A failed smoke test or budget raises :class:`~quayside.errors.BuildCheckError` after
    taking back the tag it made (pointing it at the image it named before, or removing
    it). The build is recorded with the registered version either way, when ``source``
    is one (``registry`` defaults to the one the settings name).
    """
    from quayside.packager.docker.build import docker_client, push_image, tagged_image_id
    from quayside.packager.docker.smoke import smoke_test
    from quayside.slo import evaluate, parse_budget

    if options.push:
        check_pushable(tag)
    if registry is None and source.registered_name is not None:
        from quayside.compose.clients import RegistryClient

        registry = RegistryClient()
    budget = _budget_of(source, options, registry)
    client = docker_client()
    previous = tagged_image_id(client, tag)
    build = build_model_image(
        source, tag=tag, base_image=base_image, no_cache=options.no_cache, trust=options.trust, log=log
    )
    smoke: SmokeResult | None = None
    try:
        if options.smoke:
            smoke = smoke_test(
                client,
                tag,
                manifest=source.manifest,
                model_name=model_image(source, trust=options.trust).name,
                timeout_s=options.smoke_timeout_s,
                log=log,
            )
        verdict = evaluate(parse_budget(budget), build_figures(build, smoke)) if budget else None
        if verdict is not None and not verdict.passed:
            raise BuildCheckError(_over_budget(verdict))
    except BuildCheckError as e:
        _take_back(client, tag, previous, build.image_id, log)
        try:
            _record(
                registry, source, build, base_image=base_image, smoke=smoke, failure=e.message, budget=budget
            )
        except QuaysideError as unrecorded:  # the build's own failure is what the user must see
            log(f"the failed build could not be recorded in the registry: {unrecorded.message}")
        raise
    repo_digest = push_image(client, tag, log=log) if options.push else None
    record = _record(
        registry, source, build, base_image=base_image, smoke=smoke, budget=budget, repo_digest=repo_digest
    )
    return CheckedBuild(build, smoke, budget, verdict, repo_digest, record)


def _record(
    registry: RegistryClient | None,
    source: ModelSource,
    build: BuildResult,
    *,
    base_image: str,
    smoke: SmokeResult | None,
    budget: str | None,
    failure: str | None = None,
    repo_digest: str | None = None,
) -> BuildRecord | None:
    if registry is None or source.registered_name is None or source.version is None:
        return None
    document = _record_document(
        source,
        build,
        base_image=base_image,
        smoke=smoke,
        failure=failure,
        budget=budget,
        repo_digest=repo_digest,
    )
    return registry.add_build_record(source.registered_name, int(source.version), document)


def _take_back(client: Any, tag: str, previous: str | None, built: str, log: Log) -> None:
    """Point ``tag`` back at the image it named before the build, or remove it when there was none."""
    from quayside.packager.docker.build import remove_tag, retag

    if previous is not None and previous != built:
        retag(client, previous, tag)
        log(
            f"{tag} points at the image it named before this build again ({previous.removeprefix('sha256:')[:12]})"
        )
    else:
        remove_tag(client, tag)
        log(f"removed the tag {tag}")


def check_pushable(tag: str) -> None:
    """Refuse, before building, a push to a tag that names no registry (Docker would send it to Docker Hub)."""
    first = tag.split("/", 1)[0]
    if "/" not in tag or not ("." in first or ":" in first or first == "localhost"):
        raise UsageError(
            f"--push needs a tag that names its registry, like 127.0.0.1:5000/iris:1 or "
            f"registry.example.com/team/iris:1; '{tag}' names none (pass --tag)"
        )


def ensure_image(
    client: Any, source: ModelSource, *, tag: str, base_image: str, log: Log = no_log
) -> CheckedBuild | None:
    """Make ``tag`` hold the image of ``source``: None when it already does (same digest), else the checked build."""
    from docker.errors import ImageNotFound

    try:
        existing = client.images.get(tag)
        if (existing.labels or {}).get(MODEL_DIGEST_LABEL) == source.manifest.digest():
            log(f"image {tag} already holds this model; not rebuilding")
            return None
    except ImageNotFound:
        pass
    return build_checked_image(source, tag=tag, base_image=base_image, log=log)


def recorded_image(source: ModelSource, registry: RegistryClient | None = None) -> BuildRecord | None:
    """The newest build of the registered version ``source`` that was pushed and passes its checks now.

    None for a source that is not a registered version, or one without such a build.
    """
    if source.registered_name is None or source.version is None:
        return None
    if registry is None:
        from quayside.compose.clients import RegistryClient

        registry = RegistryClient()
    return pushed_build(registry, source.registered_name, int(source.version), source.manifest.digest())


def pushed_build(registry: RegistryClient, name: str, version: int, digest: str) -> BuildRecord | None:
    """The newest pushed build of version ``version`` of ``name`` (package ``digest``) that passes now."""
    for record in registry.build_records(name, version):
        if record.repo_digest and record.passed and record.package_digest == digest:
            return record
    return None


def ensure_pulled(client: Any, reference: str, *, log: Log = no_log) -> None:
    """Make the engine hold ``reference`` (``image@sha256:...``), pulling it from its registry if not."""
    from docker.errors import APIError, ImageNotFound

    try:
        client.images.get(reference)
        return
    except ImageNotFound:
        pass
    log(f"pulling {reference}")
    try:
        client.images.pull(reference)
    except APIError as e:
        raise UnavailableError(
            f"could not pull {reference}: {' '.join(str(e.explanation or e).split())} "
            "(is the registry it was pushed to running?)"
        ) from None
