"""A package's runtime environment: the Python it was saved with and its pinned requirements."""

from __future__ import annotations

import platform
import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

from packaging.requirements import InvalidRequirement, Requirement

from quayside.errors import UsageError

ONNX_RUNTIME_PACKAGES = ("onnxruntime", "numpy")
"""What an ONNX-servable package needs at serving time, whatever it was trained with."""


@dataclass(frozen=True)
class Environment:
    """The Python a package was saved with and its pinned pip requirements.

    ``requirements`` run the native flavor; ``onnx_requirements`` run the ONNX
    model alone, and are empty unless the package holds an ONNX model.
    """

    python: str
    requirements: tuple[str, ...] = ()
    onnx_requirements: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "python": self.python,
            "requirements": list(self.requirements),
            "onnx_requirements": list(self.onnx_requirements),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Environment:
        return cls(
            python=str(data["python"]),
            requirements=tuple(data.get("requirements") or ()),
            onnx_requirements=tuple(data.get("onnx_requirements") or ()),
        )


def pin(requirement: str) -> str:
    """``name`` pinned to the installed version; a requirement with a specifier is kept as given."""
    try:
        parsed = Requirement(requirement)
    except InvalidRequirement as e:
        raise UsageError(f"'{requirement}' is not a valid pip requirement: {e}") from None
    if parsed.specifier or parsed.url:
        return str(parsed)
    try:
        version = metadata.version(parsed.name)
    except metadata.PackageNotFoundError:
        raise UsageError(
            f"requirement '{parsed.name}' is not installed, so its version cannot be pinned; "
            f"install it or give a version ('{parsed.name}==X.Y')"
        ) from None
    extras = f"[{','.join(sorted(parsed.extras))}]" if parsed.extras else ""
    return f"{parsed.name}{extras}=={version}"


def pin_all(requirements: Iterable[str]) -> tuple[str, ...]:
    """Pin each requirement, dropping repeats of the same distribution (first wins)."""
    seen: dict[str, str] = {}
    for requirement in requirements:
        pinned = pin(requirement)
        seen.setdefault(Requirement(pinned).name.lower().replace("_", "-"), pinned)
    return tuple(seen.values())


def current_environment(
    flavor_requirements: Iterable[str],
    extra_requirements: Iterable[str] = (),
    *,
    onnx: bool = False,
) -> Environment:
    """The environment of a package saved now, from this interpreter's installed versions."""
    extras = tuple(extra_requirements)
    return Environment(
        python=platform.python_version(),
        requirements=pin_all([*flavor_requirements, *extras]),
        onnx_requirements=pin_all(ONNX_RUNTIME_PACKAGES) if onnx else (),
    )


def with_onnx(environment: Environment) -> Environment:
    """The same environment, now also able to run the package's ONNX model.

    The user's extra requirements serve the native model; the ONNX model runs on
    ONNX Runtime alone, which is the point of converting it.
    """
    return Environment(environment.python, environment.requirements, pin_all(ONNX_RUNTIME_PACKAGES))


def warn_on_python_mismatch(environment: Environment) -> None:
    """Pickled models may not load, or behave differently, on another Python minor version."""
    saved = environment.python.split(".")[:2]
    running = platform.python_version_tuple()[:2]
    if saved != list(running):
        warnings.warn(
            f"package was saved with Python {environment.python}, this is {platform.python_version()}",
            RuntimeWarning,
            stacklevel=3,
        )
