"""Registered package copies under ``<artifact root>/registry/``, and packages as tar streams for REST.

A copy holds exactly the package's manifest and the files it lists. It is written
in a locked folder of the artifact root's scratch area (:mod:`quayside.scratch`),
verified (every digest) and only then renamed into place, so a registered
version's directory is always a complete, intact package, and what a crash leaves
is swept when a server next starts. Copies lie at ``registry/<model>/<key>``, where
``<model>`` is :func:`quayside.names.path_component` of the model name: registered
names are portable file names, so that is the name itself and folders written
before it existed need no migration (the stored path is read back as it is anyway).
"""

from __future__ import annotations

import os
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

from quayside import scratch
from quayside.errors import PackageError, PackageIntegrityError
from quayside.names import check_model_name, path_component
from quayside.packager.manifest import MANIFEST_NAME, Manifest, PackageReader, check_relative_path

REGISTRY_DIR = "registry"
STAGING_PREFIX = ".staging-"
"""The staging folders of older releases, inside the model's folder (swept once by :mod:`quayside.scratch`)."""


def package_files(manifest: Manifest) -> list[str]:
    """The paths a package consists of: its manifest and every file the manifest lists."""
    return [MANIFEST_NAME, *(entry.path for entry in manifest.files)]


class PackageStore:
    """Immutable package copies of registered versions, on the local filesystem."""

    def __init__(self, artifact_root: Path) -> None:
        self.root = Path(artifact_root).expanduser()

    def location(self, storage_path: str) -> Path:
        relative = PurePosixPath(storage_path)
        if relative.is_absolute() or ".." in relative.parts or relative.parts[:1] != (REGISTRY_DIR,):
            raise PackageIntegrityError(
                f"registered package path '{storage_path}' is not inside the registry"
            )
        return self.root / relative

    def model_dir(self, model: str) -> Path:
        """The folder of a registered model's package copies."""
        return self.root / REGISTRY_DIR / path_component(check_model_name(model))

    def add(self, source: Path, model: str) -> tuple[str, Manifest]:
        """Copy a verified package in (locked scratch folder, verify, rename); returns its storage path and manifest."""
        reader = _open(source)
        model_dir = self.model_dir(model)
        model_dir.mkdir(parents=True, exist_ok=True)
        key = uuid.uuid4().hex
        staging = scratch.TempDir(self.root)
        try:
            for path in package_files(reader.manifest):
                target = staging.path / check_relative_path(path)
                target.parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(reader.root / path, target)
            copy = _open(staging.path)
            if copy.manifest.digest() != reader.manifest.digest():
                raise PackageIntegrityError(
                    f"the package at '{source}' changed while it was being registered"
                )
            _fsync_tree(staging.path)
            staging.commit(model_dir / key)
        except BaseException:
            staging.abort()
            raise
        return f"{REGISTRY_DIR}/{model_dir.name}/{key}", copy.manifest

    def remove(self, storage_path: str) -> None:
        shutil.rmtree(self.location(storage_path), ignore_errors=True)


def _open(path: Path) -> PackageReader:
    try:
        return PackageReader.open(path)
    except PackageError as e:
        raise type(e)(f"'{path}' is not a valid model package: {e.message}") from None


def _fsync_tree(root: Path) -> None:
    for directory, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(Path(directory) / name, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


# --- packages as tar streams (the REST registry's upload and download format) -------------


def write_tar(package: Path, stream: IO[bytes]) -> None:
    """Write a package (its manifest and listed files only) as an uncompressed tar stream."""
    reader = _open(package)
    with tarfile.open(fileobj=stream, mode="w|") as archive:
        for path in package_files(reader.manifest):
            archive.add(reader.root / path, arcname=path, recursive=False)


def iter_tar(package: Path, chunk_size: int = 1 << 20) -> Iterator[bytes]:
    """A package as tar bytes, chunk by chunk (built in a spooled temporary file)."""
    import tempfile

    with tempfile.TemporaryFile() as spool:
        write_tar(package, spool)
        spool.seek(0)
        while chunk := spool.read(chunk_size):
            yield chunk
