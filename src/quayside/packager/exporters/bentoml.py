"""``quayside export bentoml``: a Quayside package as a BentoML project (``@bentoml.service``).

Rendering is pure (:func:`render_bento` returns the files' text); :func:`export_bentoml`
writes them beside a verified copy of the package. An ONNX-servable package is served
by a self-contained service running the package's ONNX model on ONNX Runtime with the
same input handling as ``quayside serve`` (so BentoML needs neither Quayside nor the
training framework); any other package runs its native flavor through
``quayside.load_model``. BentoML itself is not imported here.
"""

from __future__ import annotations

import json
import re
import shutil
import tempfile
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from string import Template
from typing import Any

import yaml
from packaging.requirements import InvalidRequirement, Requirement

from quayside.errors import AlreadyExistsError, PackageError, UntrustedPackageError
from quayside.packager.exporters.pysource import assignments, check_constants, identifiers, literal, unclaimed
from quayside.packager.flavors import get_flavor
from quayside.packager.manifest import MANIFEST_NAME, Manifest, PackageReader
from quayside.packager.signature import DTYPES

MODEL_DIR = "model"
SERVICE_FILE = "service.py"
BENTOML_REQUIREMENT = "bentoml>=1.2"


@dataclass(frozen=True)
class Bento:
    """The files of a BentoML project, by name, and the service's class name."""

    files: dict[str, str]
    class_name: str

    @property
    def service(self) -> str:
        """What ``bentoml serve`` takes: ``service:ClassName``."""
        return f"{Path(SERVICE_FILE).stem}:{self.class_name}"


def class_name_for(package_name: str) -> str:
    """A Python class name from a package name: ``iris-model`` → ``IrisModel``."""
    words = [w for w in re.split(r"[^0-9A-Za-z]+", package_name) if w]
    name = "".join(w[:1].upper() + w[1:] for w in words) or "Model"
    return name if name[0].isalpha() else f"Model{name}"


def service_name_for(package_name: str) -> str:
    """BentoML's service name: lowercase letters, digits, ``-`` and ``_``."""
    name = re.sub(r"[^a-z0-9_-]+", "-", package_name.lower()).strip("-_")
    return name or "model"


def _example_request(manifest: Manifest) -> str:
    example = manifest.input_example or {}
    first_row = {name: values[:1] for name, values in example.items()}
    return json.dumps({"inputs": first_row})


def _template(name: str) -> Template:
    return Template((resources.files(__package__) / "templates" / name).read_text(encoding="utf-8"))


def _render_service(
    template: str, class_name: str, constants: dict[str, Any], **fixed: str
) -> tuple[str, str]:
    """The service module and its class name.

    Every value from the package reaches the module as a constant (a literal, see
    :mod:`.pysource`); the template's other slots take only the class name, an
    identifier made of ASCII letters and digits, and text of our own (``fixed``).
    The class name gets a suffix if it would shadow a name the module uses.
    """
    text, lines = _template(template), assignments(constants)
    taken = identifiers(text.substitute(class_name="_", constants=lines, **fixed))
    class_name = unclaimed(class_name, taken, suffix="Service")
    source = text.substitute(class_name=class_name, constants=lines, **fixed)
    check_constants(source, constants)
    return source, class_name


def _common_constants(manifest: Manifest) -> dict[str, Any]:
    return {
        "PACKAGE_NAME": manifest.name,
        "SERVICE_NAME": service_name_for(manifest.name),
        "MODEL_DIR": MODEL_DIR,
        "EXAMPLE_REQUEST": _example_request(manifest),
    }


def _onnx_service(manifest: Manifest, class_name: str, onnx_sha256: str) -> tuple[str, str]:
    assert manifest.onnx is not None or manifest.flavor == "onnx"
    onnx_file = manifest.onnx.file if manifest.onnx is not None else "model.onnx"
    constants = _common_constants(manifest) | {
        "ONNX_FILE": onnx_file,
        "MODEL_SHA256": onnx_sha256,
        "INPUT_KIND": manifest.signature.inputs.kind,
        "INPUTS": [(s.name, s.dtype, list(s.shape), s.allow_nan) for s in manifest.signature.inputs.specs],
        "OUTPUTS": [(s.name, s.dtype, len(s.shape)) for s in manifest.signature.outputs.specs],
        "NUMPY_TYPES": {d.name: d.numpy.name for d in DTYPES.values()},
        "GRAPH_TYPES": {d.onnx: d.numpy.name for d in DTYPES.values()},
    }
    return _render_service("bentoml_onnx_service.py.tmpl", class_name, constants)


def _native_service(manifest: Manifest, class_name: str, trust: bool) -> tuple[str, str]:
    note = (
        " The model is a pickle: the service loads it with trust=True, as exported with --trust."
        if trust
        else ""
    )
    constants = _common_constants(manifest) | {"FLAVOR": manifest.flavor}
    return _render_service(
        "bentoml_native_service.py.tmpl", class_name, constants, trust=literal(trust), trust_note=note
    )


def _bentofile(manifest: Manifest, service: str) -> str:
    document = {
        "service": service,
        "labels": {"quayside.model": manifest.name, "quayside.flavor": manifest.flavor},
        "include": [SERVICE_FILE, f"{MODEL_DIR}/**"],
        "python": {"requirements_txt": "requirements.txt"},
    }
    return yaml.safe_dump(document, sort_keys=False)


def _requirements_txt(lines: list[str]) -> str:
    """requirements.txt: one PEP 508 requirement a line; nothing pip would read as an option or a comment."""
    for line in lines:
        if not _is_one_requirement(line):
            raise PackageError(f"the package's environment lists {line!r}, which is not one pip requirement")
    return "\n".join(lines) + "\n"


def _is_one_requirement(line: object) -> bool:
    # pip expands ${VAR} in a requirements file, so a URL could carry the installer's secrets away.
    if not isinstance(line, str) or not line.isprintable() or "${" in line:
        return False
    try:
        Requirement(line)
    except InvalidRequirement:
        return False
    return True


def runs_on_onnx(manifest: Manifest) -> bool:
    return manifest.onnx_servable or manifest.flavor == "onnx"


def requirements(manifest: Manifest, quayside_requirement: str) -> list[str]:
    """What the Bento installs: BentoML and ONNX Runtime, or Quayside and the native model's runtime."""
    if runs_on_onnx(manifest):
        onnx = manifest.environment.onnx_requirements or manifest.environment.requirements
        return [BENTOML_REQUIREMENT, *onnx]
    return [BENTOML_REQUIREMENT, quayside_requirement, *manifest.environment.requirements]


def render_bento(
    manifest: Manifest,
    *,
    onnx_sha256: str | None = None,
    trust: bool = False,
    quayside_requirement: str = "quayside",
) -> Bento:
    """The service module, ``bentofile.yaml`` and ``requirements.txt`` for this package (pure).

    ``onnx_sha256`` is the digest of the package's ONNX file (from its manifest), which
    the service checks before it loads the model. A native package whose flavor is a
    pickle is refused unless ``trust``, because the service would unpickle it.
    """
    class_name = class_name_for(manifest.name)
    if runs_on_onnx(manifest):
        onnx_file = manifest.onnx.file if manifest.onnx is not None else "model.onnx"
        digest = onnx_sha256 or manifest.file(onnx_file).sha256
        service, class_name = _onnx_service(manifest, class_name, digest)
    else:
        if get_flavor(manifest.flavor).trust_required and not trust:
            raise UntrustedPackageError(
                f"package '{manifest.name}' has no parity-checked ONNX model, so the Bento would unpickle "
                f"its {manifest.flavor} model, which runs code from the package. Export with --trust if "
                "you trust it, or convert it first (quayside convert)"
            )
        service, class_name = _native_service(manifest, class_name, trust)
    bento = Bento({}, class_name)
    bento.files[SERVICE_FILE] = service
    bento.files["bentofile.yaml"] = _bentofile(manifest, bento.service)
    bento.files["requirements.txt"] = _requirements_txt(requirements(manifest, quayside_requirement))
    return bento


def _copy_package(reader: PackageReader, destination: Path) -> None:
    destination.mkdir(parents=True)
    shutil.copyfile(reader.root / MANIFEST_NAME, destination / MANIFEST_NAME)
    for entry in reader.manifest.files:
        target = destination / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(reader.read_bytes(entry.path))


def export_bentoml(package: str | Path, output: str | Path, *, trust: bool = False) -> Bento:
    """Write a BentoML project for the package at ``package`` into ``output`` (a new directory).

    The package is verified and copied to ``output/model``; the service, ``bentofile.yaml``
    and ``requirements.txt`` go beside it. Everything is written to a temporary directory
    first and renamed into place.
    """
    reader = PackageReader.open(package)
    bento = render_bento(reader.manifest, trust=trust, quayside_requirement=_quayside_requirement())
    output = Path(output)
    if output.exists() and (not output.is_dir() or any(output.iterdir())):
        raise AlreadyExistsError(f"'{output}' already exists; choose a new directory for the Bento")
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}.", dir=output.parent))
    try:
        _copy_package(reader, staging / MODEL_DIR)
        for name, text in bento.files.items():
            (staging / name).write_text(text, encoding="utf-8")
        if output.exists():
            output.rmdir()
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return bento


def _quayside_requirement() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"quayside=={version('quayside')}"
    except PackageNotFoundError:
        return "quayside"
