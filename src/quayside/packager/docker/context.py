"""The build context of a model image: what goes in, and the Dockerfile that puts it together.

Everything here is pure except :func:`write_context`, which lays the rendered
files out in a directory; nothing talks to a Docker engine. A context is

    Dockerfile        multi-stage: a builder installs the wheelhouse into a venv,
                      the final stage copies the venv and the model onto a fresh base
    wheelhouse/*.whl  the serving runtime and the model's runtime, for the image's platform
    model/            the verified model package (quayside.yaml and the files it lists)
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from packaging.requirements import Requirement

from quayside.errors import UsageError
from quayside.names import check_name, check_pattern
from quayside.packager.flavors import get_flavor
from quayside.packager.labels import (
    MODEL_DIGEST_LABEL,
    MODEL_FLAVOR_LABEL,
    MODEL_NAME_LABEL,
    MODEL_RUNTIME_LABEL,
    MODEL_SIGNATURE_LABEL,
    MODEL_URI_LABEL,
    MODEL_VERSION_LABEL,
    QUAYSIDE_VERSION_LABEL,
)
from quayside.packager.manifest import MANIFEST_NAME, Manifest, PackageReader

DEFAULT_BASE_IMAGE = "python:3.11-slim"
IMAGE_PYTHON = "3.11"
"""The Python the wheelhouse is resolved for; the base image must run this minor version."""
IMAGE_PIP_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
"""Wheel platforms of a linux/amd64 image on glibc 2.28 or newer (Debian bookworm has 2.36)."""
VENV = "/opt/quayside/venv"
MODEL_DIR = "/opt/quayside/model"
UID = 10001
"""Numeric, so that Kubernetes can check ``runAsNonRoot`` without an /etc/passwd entry."""
DEFAULT_PORT = 8080
DEFAULT_GRPC_PORT = 8081
"""The image's gRPC (Open Inference Protocol) port; ``GRPC_PORT`` at run time overrides it, 0 turns it off."""
FIXED_MTIME = 315532800  # 1980-01-01: context files get one mtime, so only content decides cache hits

SERVING_RUNTIME = (
    "numpy",
    "pyyaml",
    "packaging",
    "pydantic",
    "pydantic-settings",
    "fastapi",
    "starlette",
    "uvicorn",
    "uvloop",
    "httptools",
    "orjson",
    "prometheus-client",
    "grpcio",
    "grpcio-health-checking",
    "protobuf",
)
"""What ``python -m quayside.serving`` imports; uvicorn without [standard] (no websockets, watchfiles)."""
NATIVE_RUNTIME = ("cloudpickle",)
"""Added when the image serves a native (non-ONNX) model, whose flavors may unpickle."""


@dataclass(frozen=True)
class ModelImage:
    """What an image serves: the facts its labels, env and tag are made of."""

    name: str
    version: str | None
    digest: str
    flavor: str
    runtime: str
    signature_json: str
    source_uri: str
    trusted: bool = False
    """The image's server loads the native model although its flavor unpickles (``build --trust``)."""

    @classmethod
    def of(
        cls,
        manifest: Manifest,
        *,
        version: str | None,
        source_uri: str,
        name: str | None = None,
        trust: bool = False,
    ) -> ModelImage:
        """``name`` is the registered name when the model comes from the registry (served under it).

        ``trust`` lets the image serve a pickled native model (its server then runs with
        ``--trust``); without it such a package is refused, since images serve untrusted.
        """
        onnx = manifest.onnx_servable or manifest.flavor == "onnx"
        if not trust:
            check_servable_in_image(manifest)
        return cls(
            name=check_name("model", name or manifest.name),  # it becomes the image's labels
            version=version,
            digest=manifest.digest(),
            flavor=manifest.flavor,
            runtime="onnx" if onnx else "native",
            signature_json=json.dumps(manifest.signature.to_dict(), sort_keys=True, separators=(",", ":")),
            source_uri=source_uri,
            trusted=trust and not onnx and get_flavor(manifest.flavor).trust_required,
        )


def check_servable_in_image(manifest: Manifest) -> None:
    """Refuse a package the image's server would refuse at start: a pickle with no ONNX model."""
    if manifest.onnx_servable or manifest.flavor == "onnx":
        return
    if get_flavor(manifest.flavor).trust_required:
        raise UsageError(
            f"package '{manifest.name}' holds a pickled {manifest.flavor} model and no parity-checked "
            "ONNX model; images serve untrusted, so convert it first (quayside convert PATH), or build with "
            "--trust if you trust the pickle (its code then runs in the image's server)"
        )


def _name(requirement: str) -> str:
    return Requirement(requirement).name.lower().replace("_", "-")


def image_requirements(manifest: Manifest, installed_version: Callable[[str], str | None]) -> tuple[str, ...]:
    """The image's top-level requirements: the serving runtime, then the model's runtime.

    The serving runtime is pinned to the versions installed here (what Quayside was
    run and tested with); the model's own pins win where both name a distribution.
    An ONNX-servable package brings its ONNX requirements only, never its training
    framework.
    """
    onnx = manifest.onnx_servable or manifest.flavor == "onnx"
    model_requirements = manifest.environment.onnx_requirements if onnx else manifest.environment.requirements
    if onnx and not model_requirements:
        model_requirements = ("onnxruntime",)
    chosen: dict[str, str] = {_name(r): r for r in model_requirements}
    runtime = SERVING_RUNTIME if onnx else SERVING_RUNTIME + NATIVE_RUNTIME
    for name in runtime:
        if name in chosen:
            continue
        version = installed_version(name)
        chosen[name] = f"{name}=={version}" if version else name
    return tuple(sorted(chosen.values(), key=_name))


def image_labels(
    model: ModelImage, *, base_image: str, quayside_version: str, created: str
) -> dict[str, str]:
    """OCI annotations plus Quayside's own, which ``quayside deployments`` and Kubernetes read back."""
    version = model.version or model.digest[:12]
    return {
        "org.opencontainers.image.title": model.name,
        "org.opencontainers.image.description": f"Quayside model server for '{model.name}' (V2 and /invocations)",
        "org.opencontainers.image.version": version,
        "org.opencontainers.image.created": created,
        "org.opencontainers.image.vendor": "Quayside",
        "org.opencontainers.image.base.name": base_image,
        MODEL_NAME_LABEL: model.name,
        MODEL_VERSION_LABEL: model.version or "",
        MODEL_DIGEST_LABEL: model.digest,
        MODEL_FLAVOR_LABEL: model.flavor,
        MODEL_RUNTIME_LABEL: model.runtime,
        MODEL_URI_LABEL: model.source_uri,
        MODEL_SIGNATURE_LABEL: model.signature_json,
        QUAYSIDE_VERSION_LABEL: quayside_version,
    }


def docker_quote(value: str) -> str:
    """A double-quoted Dockerfile word: backslash, quote and ``$`` escaped, on one line."""
    if "\n" in value or "\r" in value:
        raise UsageError(f"a Dockerfile label or env value cannot span lines: {value!r}")
    escaped = value.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$")
    return f'"{escaped}"'


# The characters of a Docker image reference (registry, path, tag, digest): nothing a Dockerfile reads
# as a separator, a line continuation, a quote or a variable, since FROM takes the reference unquoted.
_IMAGE_REFERENCE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._\-/:@]*")
_IMAGE_REFERENCE_RULE = "a Docker image reference is letters, digits, '.', '_', '-', '/', ':' and '@'"


def check_base_image(image: str) -> str:
    """``image`` if it can stand unquoted after ``FROM``, else :class:`InvalidNameError`."""
    return check_pattern("base image", image, _IMAGE_REFERENCE, _IMAGE_REFERENCE_RULE, max_length=255)


def _exec_form(argv: list[str]) -> str:
    return json.dumps(argv)


HEALTHCHECK_SCRIPT = (
    "import os, urllib.request; "
    "urllib.request.urlopen('http://127.0.0.1:%s/v2/health/ready' % os.environ.get('PORT', '8080'), timeout=2)"
)
"""Slim bases have no curl; the venv's Python asks the readiness endpoint (non-2xx raises, exit 1)."""


def render_dockerfile(
    *,
    base_image: str,
    model: ModelImage,
    labels: Mapping[str, str],
    quayside_version: str,
) -> str:
    """The image's Dockerfile, as text."""
    import jinja2  # a core dependency, imported here to keep `import quayside` fast

    template_text = resources.files(__package__).joinpath("templates/Dockerfile.j2").read_text("utf-8")
    env = jinja2.Environment(
        autoescape=False, keep_trailing_newline=True, undefined=jinja2.StrictUndefined
    )  # a Dockerfile is not HTML
    env.filters["docker_quote"] = docker_quote
    return env.from_string(template_text).render(
        base_image=check_base_image(base_image),
        model_name=model.name,
        model_version=model.version,
        # A models:/ URI: with QUAYSIDE_REGISTRY_URI at run time, the image follows it when it moves.
        model_source=model.source_uri if model.source_uri.startswith("models:/") else "",
        onnx=model.runtime == "onnx",
        quayside_version=quayside_version,
        venv=VENV,
        model_dir=MODEL_DIR,
        uid=UID,
        port=DEFAULT_PORT,
        grpc_port=DEFAULT_GRPC_PORT,
        healthcheck=_exec_form(["python", "-c", HEALTHCHECK_SCRIPT]),
        entrypoint=_exec_form(["python", "-m", "quayside.serving"]),
        cmd=_exec_form([MODEL_DIR, "--trust"] if model.trusted else [MODEL_DIR]),
        labels=labels,
    )


def write_context(
    directory: Path,
    *,
    package_root: Path,
    manifest: Manifest,
    wheels: Iterable[Path],
    dockerfile: str,
) -> Path:
    """Lay a build context out in ``directory`` (created, and required to be empty)."""
    directory = Path(directory)
    if directory.exists() and any(directory.iterdir()):
        raise UsageError(f"'{directory}' is not empty; give a new or empty directory for the build context")
    (directory / "wheelhouse").mkdir(parents=True)
    (directory / "model").mkdir()
    for wheel in wheels:
        _place(wheel, directory / "wheelhouse" / wheel.name)
    _copy_package(package_root, manifest, directory / "model")
    (directory / "Dockerfile").write_text(dockerfile, encoding="utf-8")
    _normalise_metadata(directory)
    return directory


def _normalise_metadata(directory: Path) -> None:
    # COPY keeps modes: whatever the host's umask, the image's non-root user must read
    # everything, and no build should miss the cache over an mtime.
    for path in directory.rglob("*"):
        path.chmod(0o755 if path.is_dir() else 0o644)
        os.utime(path, (FIXED_MTIME, FIXED_MTIME), follow_symlinks=False)


def _place(source: Path, target: Path) -> None:
    # A hard link into the host's wheel cache when it is on the same file system:
    # no copy of the ~100 MB wheelhouse per build.
    try:
        os.link(source, target)
    except OSError:
        shutil.copyfile(source, target)


def _copy_package(package_root: Path, manifest: Manifest, target: Path) -> None:
    """Copy the manifest and each listed file, as verified bytes (nothing unlisted, nothing altered)."""
    reader = PackageReader(package_root, manifest)
    shutil.copyfile(package_root / MANIFEST_NAME, target / MANIFEST_NAME)
    for entry in manifest.files:
        destination = target / entry.path
        destination.parent.mkdir(parents=True, exist_ok=True)
        destination.write_bytes(reader.read_bytes(entry.path))
