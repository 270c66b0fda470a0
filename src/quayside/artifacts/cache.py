"""The package cache: verified model packages on this machine, one folder per package digest.

A package resolved from somewhere that is not a local directory (an S3 artifact root, a
``quayside server``, a run's artifacts) is downloaded once into ``CACHE/<digest>``, where
``<digest>`` is its manifest's digest (:meth:`~quayside.packager.manifest.Manifest.digest`,
which covers every file's sha256), and that folder is reused by every later resolution of
the same package, whatever URI named it.

A fill writes into a locked folder of the cache's own scratch area (:mod:`quayside.scratch`,
so on the cache's file system), which is verified (every listed file against its sha256,
the manifest against the digest it is filed under) and only then renamed into place. Two
processes filling one digest at once each write their own folder; the first rename wins and
the other discards its copy, so a reader never sees a half-written package. What a dead
filler left is swept by the next fill. A cached folder whose manifest no longer matches its
digest (edited by hand) counts as missing and is filled again; the files themselves are
checked again by whoever loads the package.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Callable
from pathlib import Path

from quayside import scratch
from quayside.errors import PackageIntegrityError, QuaysideError, UsageError
from quayside.packager.manifest import MANIFEST_NAME, PackageReader, read_manifest

DIGEST_PATTERN = re.compile(r"[0-9a-f]{64}")

Download = Callable[[Path], None]
"""Writes a package into the folder it is given (a path that does not exist yet: it creates it)."""


def home_cache_dir(home: Path) -> Path:
    """The package cache of a Quayside home (``$QUAYSIDE_HOME/cache/packages``), shared by every resolution."""
    return Path(home) / "cache" / "packages"


def check_digest(digest: str) -> str:
    """``digest`` if it is a package digest (64 lower-case hex digits), else a :class:`UsageError`."""
    if not isinstance(digest, str) or not DIGEST_PATTERN.fullmatch(digest):
        raise UsageError(f"{digest!r} is not a package digest (64 hex digits)")
    return digest


class PackageCache:
    """Verified packages under ``root``, one folder per digest (created on the first fill)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).expanduser()

    def path(self, digest: str) -> Path:
        """Where the package of ``digest`` lies once cached."""
        return self.root / check_digest(digest)

    def get(self, digest: str) -> Path | None:
        """The cached folder of ``digest``, or None when it is not cached (or no longer matches its digest)."""
        target = self.path(digest)
        if not (target / MANIFEST_NAME).is_file():
            return None
        try:
            matches = read_manifest(target).digest() == digest
        except QuaysideError:
            return None
        return target if matches else None

    def fill(self, digest: str, download: Download, *, source: str) -> Path:
        """The cached folder of ``digest``; when missing, ``download`` writes it and it is verified first.

        ``source`` says where the package comes from, for the message of a copy that fails
        verification (a :class:`~quayside.errors.PackageIntegrityError`; nothing is cached then).
        """
        cached = self.get(digest)
        if cached is not None:
            return cached
        self.root.mkdir(parents=True, exist_ok=True)
        scratch.sweep(self.root)
        staging = scratch.TempDir(self.root, "fill")
        try:
            folder = staging.path / "package"
            download(folder)
            _verify(folder, digest, source)
            return self._place(folder, digest, staging.path)
        finally:
            staging.abort()

    def _place(self, folder: Path, digest: str, staging: Path) -> Path:
        target = self.path(digest)
        if target.exists() and self.get(digest) is None:
            # A damaged copy: moved aside (removed with the staging folder), never edited in place.
            os.rename(target, staging / "damaged")
        try:
            os.rename(folder, target)
        except OSError:
            if self.get(digest) is None:  # not another filler that won the race: a real failure
                raise
        return target

    def clear(self, digest: str) -> None:
        """Forget the cached copy of ``digest`` (the next resolution downloads it again)."""
        shutil.rmtree(self.path(digest), ignore_errors=True)


def _verify(folder: Path, digest: str, source: str) -> None:
    try:
        manifest = PackageReader.open(folder).manifest
    except QuaysideError as e:  # a missing manifest is a NotFoundError, a bad file a PackageError
        raise PackageIntegrityError(f"the package downloaded from {source} is damaged: {e.message}") from None
    if manifest.digest() != digest:
        raise PackageIntegrityError(
            f"the package downloaded from {source} is not the one expected "
            f"(manifest digest {manifest.digest()[:12]}…, expected {digest[:12]}…)"
        )
