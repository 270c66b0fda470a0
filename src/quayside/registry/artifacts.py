"""Registered package copies under ``registry/`` of the artifact store, and packages as tar streams for REST.

A copy holds exactly the package's manifest and the files it lists, as objects of the
artifact store (:class:`~quayside.artifacts.ArtifactStore`: a local directory or an S3
bucket) under ``registry/<model>/<key>/<path>``, where ``<model>`` is
:func:`quayside.names.path_component` of the model name (registered names are portable file
names, so that is the name itself, and folders written before it existed need no
migration: the stored path is read back as it is anyway).

Each file is stored (the store computes its sha256 while streaming, and it must equal the
manifest's), the manifest last; only then does the registry insert the row that names the
copy, so a crash leaves at most objects no row names, which ``quayside gc`` finds. Reading
a copy gives a local, verified directory: the copy itself when the store is a local
directory, else a download into the package cache (:mod:`quayside.artifacts.cache`), once
per digest.
"""

from __future__ import annotations

import io
import logging
import shutil
import tarfile
import uuid
from collections.abc import Iterator
from pathlib import Path, PurePosixPath
from typing import IO

import yaml

from quayside.artifacts import ArtifactStore, LocalArtifactStore
from quayside.artifacts.cache import PackageCache
from quayside.errors import NotFoundError, PackageError, PackageIntegrityError, QuaysideError, UsageError
from quayside.names import check_model_name, path_component
from quayside.packager.manifest import (
    MANIFEST_NAME,
    Manifest,
    PackageReader,
    check_relative_path,
    read_manifest,
    resolve_inside,
)

REGISTRY_DIR = "registry"
STAGING_PREFIX = ".staging-"
"""The staging folders of older releases, inside the model's folder (swept once by :mod:`quayside.scratch`)."""
CHUNK = 1 << 20

logger = logging.getLogger("quayside.registry")


def package_files(manifest: Manifest) -> list[str]:
    """The paths a package consists of: its manifest and every file the manifest lists."""
    return [MANIFEST_NAME, *(entry.path for entry in manifest.files)]


def check_inside(storage_path: str, top: str, what: str) -> str:
    """``storage_path`` if it is a plain path under the folder ``top``, else a :class:`PackageIntegrityError`."""
    relative = PurePosixPath(storage_path)
    if (
        relative.is_absolute()
        or ".." in relative.parts
        or relative.parts[:1] != (top,)
        or len(relative.parts) < 2
        or relative.as_posix() != storage_path
    ):
        raise PackageIntegrityError(f"{what} path '{storage_path}' is not inside the registry")
    return storage_path


def remove_folder(store: ArtifactStore, prefix: str, *, prune: bool = False) -> None:
    """Remove the objects under ``prefix``; a failure is logged (what is left is an orphan ``quayside gc``
    finds), not raised, since the rows are already gone or were never written. ``prune`` also removes
    the local folders above it left empty (a deleted model's)."""
    try:
        store.delete_prefix(prefix)
    except QuaysideError as e:
        logger.warning("could not remove the artifacts under %s (%s); quayside gc will list them", prefix, e)
        return
    if prune and isinstance(store, LocalArtifactStore):
        _prune_empty(store.root, store.local_path(prefix).parent)


def _prune_empty(root: Path, folder: Path) -> None:
    """Remove ``folder`` and its parents below ``root`` while they are empty (a model's or a version's)."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:  # not empty (or already gone): what is left belongs to someone else
            return
        folder = folder.parent


class PackageStore:
    """Immutable package copies of registered versions, in an artifact store.

    ``cache`` is where copies in a remote store are downloaded to be read; a local store
    needs none (its copies are read where they lie).
    """

    def __init__(self, store: ArtifactStore, cache: PackageCache | None = None) -> None:
        self.store = store
        self.cache = cache

    @staticmethod
    def check_storage_path(storage_path: str) -> str:
        return check_inside(storage_path, REGISTRY_DIR, "registered package")

    def model_prefix(self, model: str) -> str:
        """The folder of a registered model's package copies."""
        return f"{REGISTRY_DIR}/{path_component(check_model_name(model))}"

    def add(self, source: Path, model: str) -> tuple[str, Manifest]:
        """Store a verified package's files, then its manifest; returns its storage path and manifest.

        Nothing refers to the copy until the caller's row does; a copy that fails is removed.
        """
        reader = _open(source)
        storage_path = f"{self.model_prefix(model)}/{uuid.uuid4().hex}"
        changed = PackageIntegrityError(f"the package at '{source}' changed while it was being registered")
        try:
            for entry in reader.manifest.files:
                with resolve_inside(reader.root, entry.path).open("rb") as handle:
                    stored = self.store.put(f"{storage_path}/{entry.path}", handle)
                if stored.sha256 != entry.sha256:
                    raise changed
            manifest = (reader.root / MANIFEST_NAME).read_bytes()
            if _parse_manifest(manifest, source).digest() != reader.manifest.digest():
                raise changed
            self.store.put(f"{storage_path}/{MANIFEST_NAME}", io.BytesIO(manifest), size=len(manifest))
        except BaseException:
            remove_folder(self.store, storage_path)
            raise
        return storage_path, reader.manifest

    def directory(self, storage_path: str, digest: str) -> Path:
        """A local directory holding the copy: the copy itself in a local store, else the package cache's."""
        self.check_storage_path(storage_path)
        if isinstance(self.store, LocalArtifactStore):
            return self.store.local_path(storage_path)
        if self.cache is None:
            raise UsageError(
                f"reading registered packages from {self.store.description} needs a local package cache"
            )
        return self.cache.fill(
            digest, lambda folder: self.download(storage_path, folder), source=self.store.description
        )

    def download(self, storage_path: str, folder: Path) -> None:
        """Copy the package at ``storage_path`` into ``folder`` (created here), each object checked as it is read."""
        self.check_storage_path(storage_path)
        folder.mkdir(parents=True)
        self._copy_out(f"{storage_path}/{MANIFEST_NAME}", folder / MANIFEST_NAME)
        for entry in read_manifest(folder).files:
            target = folder / check_relative_path(entry.path)
            target.parent.mkdir(parents=True, exist_ok=True)
            self._copy_out(f"{storage_path}/{entry.path}", target)

    def _copy_out(self, key: str, target: Path) -> None:
        try:
            source = self.store.open(key)
        except NotFoundError:
            raise PackageIntegrityError(
                f"the registered package copy is incomplete: '{key}' is missing from {self.store.description}"
            ) from None
        # A read that ends on a digest mismatch raises, and the caller discards the whole folder.
        with source, target.open("xb") as handle:
            shutil.copyfileobj(source, handle, CHUNK)

    def remove(self, storage_path: str, *, prune: bool = False) -> None:
        remove_folder(self.store, self.check_storage_path(storage_path), prune=prune)


def _open(path: Path) -> PackageReader:
    try:
        return PackageReader.open(path)
    except PackageError as e:
        raise type(e)(f"'{path}' is not a valid model package: {e.message}") from None


def _parse_manifest(data: bytes, source: Path) -> Manifest:
    try:
        return Manifest.from_dict(yaml.safe_load(data.decode("utf-8")))
    except (yaml.YAMLError, UnicodeDecodeError, PackageError, AttributeError, TypeError):
        raise PackageIntegrityError(
            f"the package at '{source}' changed while it was being registered"
        ) from None


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
