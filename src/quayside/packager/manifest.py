"""The model package manifest (``quayside.yaml``): its fields, file digests and safe file access.

A package is a directory holding ``quayside.yaml`` and the files it lists. Each
listed file carries a sha256; :class:`PackageReader` hands out a file's bytes
only after checking that its path stays inside the package and its digest
matches, so a loader never sees a tampered or foreign file.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath
from typing import Any

import yaml

from quayside.errors import NotFoundError, PackageError, PackageIntegrityError
from quayside.packager.environment import Environment
from quayside.packager.golden import NOT_RECORDED, GoldenOutputs
from quayside.packager.parity import DEFAULT_ATOL, DEFAULT_RTOL, Tolerance
from quayside.packager.signature import Arrays, Signature

MANIFEST_NAME = "quayside.yaml"
FORMAT_VERSION = 1


@dataclass(frozen=True)
class FileEntry:
    """One file of a package: its path relative to the package root, digest and size."""

    path: str
    sha256: str
    size: int


@dataclass(frozen=True)
class OnnxInfo:
    """The ONNX model kept beside the native one, and the parity it measured."""

    file: str
    opset: int
    servable: bool
    parity: Mapping[str, Any]


@dataclass(frozen=True)
class Manifest:
    """Everything ``quayside.yaml`` says about a package."""

    name: str
    flavor: str
    files: tuple[FileEntry, ...]
    signature: Signature
    environment: Environment
    input_example: Mapping[str, Any] | None = None
    golden: GoldenOutputs | None = None
    """The model's outputs for the input example when it was saved (or why there are none);
    None in a package written before they were recorded, whose manifest then has no such field."""
    flavor_options: Mapping[str, Any] = field(default_factory=dict)
    onnx: OnnxInfo | None = None
    metadata: Mapping[str, Any] = field(default_factory=dict)
    source_run: str | None = None
    created_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(timespec="seconds"))
    format_version: int = FORMAT_VERSION

    @property
    def onnx_servable(self) -> bool:
        return self.onnx is not None and self.onnx.servable

    @property
    def size(self) -> int:
        """Total bytes of the listed files."""
        return sum(f.size for f in self.files)

    def golden_outputs(self) -> Arrays:
        """What the model answered for its input example when saved (empty if unrecorded)."""
        return self.golden.arrays() if self.golden is not None else {}

    @property
    def golden_missing(self) -> str | None:
        """Why the package records no golden outputs, or None when it does."""
        return NOT_RECORDED if self.golden is None else self.golden.missing

    def parity_tolerance(self) -> Tolerance:
        """The tolerance the package's parity check ran with (the default one when it never ran)."""
        parity = self.onnx.parity if self.onnx is not None else {}
        return Tolerance(
            rtol=float(parity.get("rtol", DEFAULT_RTOL)), atol=float(parity.get("atol", DEFAULT_ATOL))
        )

    def file(self, path: str) -> FileEntry:
        for entry in self.files:
            if entry.path == path:
                return entry
        raise PackageIntegrityError(f"'{path}' is not listed in {MANIFEST_NAME}")

    def with_files(self, entries: Iterable[FileEntry]) -> Manifest:
        """A copy listing these entries in addition to (or instead of, same path) the current ones."""
        merged = {f.path: f for f in self.files}
        merged.update({f.path: f for f in entries})
        return replace(self, files=tuple(merged[p] for p in sorted(merged)))

    def to_dict(self) -> dict[str, Any]:
        # Only a package that records golden outputs has the field, so an older package keeps its digest.
        golden = {} if self.golden is None else {"golden_outputs": self.golden.to_dict()}
        return {
            "format_version": self.format_version,
            "name": self.name,
            "flavor": self.flavor,
            "flavor_options": dict(self.flavor_options),
            "created_at": self.created_at,
            "source_run": self.source_run,
            "files": [{"path": f.path, "sha256": f.sha256, "size": f.size} for f in self.files],
            "signature": self.signature.to_dict(),
            "input_example": dict(self.input_example) if self.input_example is not None else None,
            **golden,
            "environment": self.environment.to_dict(),
            "onnx": None
            if self.onnx is None
            else {
                "file": self.onnx.file,
                "opset": self.onnx.opset,
                "servable": self.onnx.servable,
                "parity": dict(self.onnx.parity),
            },
            "metadata": dict(self.metadata),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Manifest:
        try:
            version = int(data["format_version"])
            if version > FORMAT_VERSION:
                raise PackageError(
                    f"package format {version} is newer than this Quayside reads ({FORMAT_VERSION}); "
                    "upgrade quayside"
                )
            onnx = data.get("onnx")
            golden = data.get("golden_outputs")
            return cls(
                name=str(data["name"]),
                flavor=str(data["flavor"]),
                files=tuple(
                    FileEntry(str(f["path"]), str(f["sha256"]), int(f["size"])) for f in data["files"]
                ),
                signature=Signature.from_dict(data["signature"]),
                environment=Environment.from_dict(data["environment"]),
                input_example=data.get("input_example"),
                golden=GoldenOutputs.from_dict(golden) if golden is not None else None,
                flavor_options=data.get("flavor_options") or {},
                onnx=None
                if not onnx
                else OnnxInfo(
                    str(onnx["file"]), int(onnx["opset"]), bool(onnx["servable"]), onnx.get("parity") or {}
                ),
                metadata=data.get("metadata") or {},
                source_run=data.get("source_run"),
                created_at=str(data["created_at"]),
                format_version=version,
            )
        except (KeyError, TypeError, ValueError) as e:
            raise PackageError(f"{MANIFEST_NAME} is malformed: missing or invalid field {e}") from None

    def digest(self) -> str:
        """A sha256 over the whole manifest, and so over every file's digest: the package's identity."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(canonical.encode()).hexdigest()


# --- paths and digests -----------------------------------------------------------------


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def check_relative_path(path: str) -> PurePosixPath:
    """Refuse a manifest path that is absolute, climbs with ``..`` or is otherwise not plain."""
    pure = PurePosixPath(path)
    if not path or "\\" in path or "\x00" in path:
        raise PackageIntegrityError(f"package path {path!r} is not a plain relative path")
    if pure.is_absolute() or path.startswith("~"):
        raise PackageIntegrityError(f"package path '{path}' is absolute; paths must stay inside the package")
    if any(part in ("..", ".") for part in pure.parts) or pure.parts == ():
        raise PackageIntegrityError(f"package path '{path}' escapes the package directory")
    return pure


def resolve_inside(root: Path, path: str) -> Path:
    """The real location of a package path, refusing anything (symlinks included) outside ``root``."""
    relative = check_relative_path(path)
    real_root = root.resolve()
    target = (real_root / relative).resolve()
    if not target.is_relative_to(real_root):
        raise PackageIntegrityError(f"package path '{path}' leads outside the package (through a symlink)")
    return target


def file_entry(root: Path, path: str) -> FileEntry:
    """Digest a file already written inside ``root``."""
    target = resolve_inside(root, path)
    return FileEntry(path, sha256_file(target), target.stat().st_size)


# --- reading and writing ---------------------------------------------------------------


def write_manifest(root: Path, manifest: Manifest) -> None:
    """Write ``quayside.yaml`` atomically (temporary file, then rename)."""
    text = yaml.safe_dump(manifest.to_dict(), sort_keys=False, allow_unicode=True, default_flow_style=None)
    fd, tmp = tempfile.mkstemp(prefix=".quayside.", suffix=".yaml", dir=root)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, root / MANIFEST_NAME)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_manifest(root: Path) -> Manifest:
    """Parse ``quayside.yaml`` (no digest checks; see :class:`PackageReader`)."""
    root = Path(root)
    if not root.is_dir():
        raise NotFoundError(f"no model package at '{root}': not a directory")
    path = root / MANIFEST_NAME
    if path.is_symlink() or not path.is_file():
        raise NotFoundError(f"no model package at '{root}': {MANIFEST_NAME} is missing")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        raise PackageError(f"{path} is not valid YAML: {e}") from None
    if not isinstance(data, Mapping):
        raise PackageError(f"{path} does not hold a mapping")
    return Manifest.from_dict(data)


class PackageReader:
    """Read access to a package's files, each checked against its manifest entry."""

    def __init__(self, root: Path, manifest: Manifest) -> None:
        self.root = Path(root)
        self.manifest = manifest

    @classmethod
    def open(cls, root: Path | str) -> PackageReader:
        """Read the manifest and check that every listed file is present and intact."""
        reader = cls(Path(root), read_manifest(Path(root)))
        reader.verify()
        return reader

    def verify(self) -> None:
        """Check every listed file: path inside the package, present, a regular file, digest equal."""
        for entry in self.manifest.files:
            actual = sha256_file(self._locate(entry))
            if actual != entry.sha256:
                raise PackageIntegrityError(_mismatch(entry, actual))

    def read_bytes(self, path: str) -> bytes:
        """A listed file's bytes, verified on the bytes returned (no window to swap the file)."""
        entry = self.manifest.file(path)
        data = self._locate(entry).read_bytes()
        self._check(entry, data)
        return data

    def _locate(self, entry: FileEntry) -> Path:
        target = resolve_inside(self.root, entry.path)
        if not target.exists():
            raise PackageIntegrityError(f"package file '{entry.path}' is missing: the package is incomplete")
        if not target.is_file():
            raise PackageIntegrityError(f"package file '{entry.path}' is not a regular file")
        return target

    @staticmethod
    def _check(entry: FileEntry, data: bytes) -> None:
        actual = hashlib.sha256(data).hexdigest()
        if actual != entry.sha256:
            raise PackageIntegrityError(_mismatch(entry, actual))


def _mismatch(entry: FileEntry, actual: str) -> str:
    return (
        f"package file '{entry.path}' does not match its sha256 in {MANIFEST_NAME} "
        f"(expected {entry.sha256[:12]}…, got {actual[:12]}…): the package was altered"
    )
