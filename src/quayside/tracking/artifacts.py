"""Run artifacts on the local filesystem, under ``<artifact root>/runs/<run id>/``.

Every write lands in a locked temporary file in the artifact root's scratch folder
(:mod:`quayside.scratch`) and is renamed into place, so a reader never sees half a
file, and what a crash leaves behind is swept when a server next starts. Every path
is checked before it touches the disk: nothing absolute, no ``..``, no control
characters, no component over :data:`MAX_COMPONENT_BYTES` bytes, nothing that a
symlink carries outside the run's directory.
"""

from __future__ import annotations

import re
import shutil
import unicodedata
from collections.abc import Iterable
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from quayside import scratch
from quayside.errors import NotFoundError, PayloadTooLargeError, UsageError
from quayside.names import shown
from quayside.tracking.entities import ArtifactInfo

TEMP_PREFIX = ".quayside-upload-"
"""The temporary names of older releases, beside the destination (swept once, reserved still)."""
RUN_ID_PATTERN = re.compile(r"[0-9a-f]{32}")
CHUNK = 1 << 20
MAX_PATH_LENGTH = 1024
"""The longest artifact path, in characters (the logged-model table's path column holds 1024)."""
MAX_COMPONENT_BYTES = 255
"""The longest component of an artifact path, in UTF-8 bytes (what the common file systems allow)."""


def check_artifact_path(path: str, *, allow_root: bool = False) -> PurePosixPath:
    """A relative artifact path with no ``..``, no absolute start and no odd characters, or a 400."""
    if path in ("", ".") and allow_root:
        return PurePosixPath()
    if not path or "\\" in path or "\x00" in path:
        raise UsageError(f"artifact path {shown(path)} is not a plain relative path")
    _check_characters(path)
    pure = PurePosixPath(path)
    if pure.is_absolute() or path.startswith("~"):
        raise UsageError(f"artifact path '{path}' is absolute; artifact paths are relative to the run")
    if any(part in ("..", ".") for part in path.split("/")) or not pure.parts:
        raise UsageError(f"artifact path '{path}' escapes the run's artifact directory")
    if pure.name.startswith(TEMP_PREFIX):
        raise UsageError(f"artifact path '{path}' uses a name reserved for uploads in progress")
    return pure


def _check_characters(path: str) -> None:
    """Refuse what the file system cannot hold: over-long paths or components, controls, lone surrogates."""
    if len(path) > MAX_PATH_LENGTH:
        raise UsageError(
            f"artifact path {shown(path)} is {len(path)} characters long; the limit is {MAX_PATH_LENGTH}"
        )
    for character in path:
        if unicodedata.category(character) in ("Cc", "Cs"):
            raise UsageError(
                f"artifact path {shown(path)} holds the control character U+{ord(character):04X}"
            )
    for part in path.split("/"):
        if len(part.encode()) > MAX_COMPONENT_BYTES:
            raise UsageError(
                f"artifact path {shown(path)} has a component of {len(part.encode())} bytes; "
                f"the limit is {MAX_COMPONENT_BYTES}"
            )


class ArtifactStore:
    """Files of runs under one root directory."""

    def __init__(self, root: Path, max_bytes: int | None = None) -> None:
        self.root = Path(root).expanduser()
        self.max_bytes = max_bytes

    def run_dir(self, run_id: str) -> Path:
        if not RUN_ID_PATTERN.fullmatch(run_id):
            raise UsageError(f"{shown(run_id)} is not a run id")
        return self.root / "runs" / run_id

    def resolve(self, run_id: str, path: str, *, allow_root: bool = False) -> Path:
        relative = check_artifact_path(path, allow_root=allow_root)
        real_base = self.run_dir(run_id).resolve()
        target = (real_base / relative).resolve()
        if target != real_base and not target.is_relative_to(real_base):
            raise UsageError(f"artifact path '{path}' leads outside the run's artifact directory")
        return target

    # --- writing -------------------------------------------------------------------------

    def writer(self, run_id: str, path: str) -> ArtifactWriter:
        """A writer for ``path``: bytes go to a temporary file until :meth:`ArtifactWriter.commit` renames it."""
        target = self.resolve(run_id, path)
        if target.is_dir():
            raise UsageError(f"artifact path '{path}' is a directory")
        real_base = self.run_dir(run_id).resolve()
        for parent in target.parents:
            if parent == real_base or not parent.is_relative_to(real_base):
                break
            if parent.exists() and not parent.is_dir():
                raise UsageError(
                    f"artifact path '{path}' is under '{parent.relative_to(real_base).as_posix()}', "
                    "which is a file"
                )
        return ArtifactWriter(target, path, self.max_bytes, self.root)

    def write_stream(self, run_id: str, path: str, chunks: Iterable[bytes]) -> ArtifactInfo:
        """Write chunks to ``path`` (temporary name, then rename), refusing more than ``max_bytes``."""
        writer = self.writer(run_id, path)
        try:
            for chunk in chunks:
                writer.write(chunk)
            return writer.commit()
        except BaseException:
            writer.abort()
            raise

    def write_file(self, run_id: str, path: str, source: Path) -> ArtifactInfo:
        with Path(source).open("rb") as handle:
            return self.write_stream(run_id, path, iter(lambda: handle.read(CHUNK), b""))

    # --- reading -------------------------------------------------------------------------

    def file_path(self, run_id: str, path: str) -> Path:
        """The location of an existing artifact file, for streaming it out."""
        target = self.resolve(run_id, path)
        if not target.is_file():
            raise NotFoundError(f"run '{run_id}' has no artifact file '{path}'")
        return target

    def open(self, run_id: str, path: str) -> BinaryIO:
        return self.file_path(run_id, path).open("rb")

    def list(self, run_id: str, path: str = "", *, recursive: bool = False) -> list[ArtifactInfo]:
        """Files and directories under ``path``, sorted; in-progress uploads are not listed."""
        directory = self.resolve(run_id, path, allow_root=True)
        if directory.is_file():
            return [ArtifactInfo(path, False, directory.stat().st_size)]
        if not directory.is_dir():
            if path:
                raise NotFoundError(f"run '{run_id}' has no artifact '{path}'")
            return []
        entries = sorted(directory.rglob("*") if recursive else directory.iterdir())
        real_base = self.run_dir(run_id).resolve()
        infos = []
        for entry in entries:
            if entry.name.startswith(TEMP_PREFIX):
                continue
            relative = entry.relative_to(real_base).as_posix()
            is_dir = entry.is_dir()
            infos.append(ArtifactInfo(relative, is_dir, None if is_dir else entry.stat().st_size))
        return infos

    def copy_out(self, run_id: str, path: str, destination: Path) -> Path:
        """Copy an artifact file or directory to ``destination`` (a directory) and return the copy's path."""
        source = self.resolve(run_id, path, allow_root=True)
        if not source.exists():
            raise NotFoundError(f"run '{run_id}' has no artifact '{path}'")
        destination = Path(destination)
        destination.mkdir(parents=True, exist_ok=True)
        target = destination / (source.name if path else run_id)
        if source.is_file():
            shutil.copyfile(source, target)
        else:
            ignore = shutil.ignore_patterns(f"{TEMP_PREFIX}*")
            shutil.copytree(source, target, ignore=ignore, dirs_exist_ok=True)
        return target


class ArtifactWriter:
    """One artifact upload in progress: a locked temporary file in the artifact root's scratch folder."""

    def __init__(self, target: Path, path: str, max_bytes: int | None, root: Path) -> None:
        self.target = target
        self.path = path
        self.max_bytes = max_bytes
        self.size = 0
        self._temporary = scratch.TempFile(root)
        self.temporary = self._temporary.path

    def write(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.max_bytes is not None and self.size > self.max_bytes:
            raise PayloadTooLargeError(
                f"artifact '{self.path}' is over the {self.max_bytes}-byte upload limit "
                "(QUAYSIDE_MAX_ARTIFACT_BYTES)"
            )
        self._temporary.handle.write(chunk)

    def commit(self) -> ArtifactInfo:
        """Flush to disk and rename into place: after this returns, the file survives a crash."""
        # Folders are made only now, so an upload cut short leaves no empty folder among the artifacts.
        try:
            self.target.parent.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"artifact path '{self.path}' is under a file") from None
        self._temporary.commit(self.target)
        return ArtifactInfo(self.path, False, self.size)

    def abort(self) -> None:
        self._temporary.abort()
