"""Unpacking a package's tar archive (the REST registry's upload and download format, and how a
model image fetches a version) safely.

An archive is judged by its member list before a byte is written: at most so many
entries, at most so many bytes unpacked, nothing but regular files and directories
(no links, devices, FIFOs or sparse files), every name plain, relative and inside the
package, nothing twice. Only then are the files copied out, with a running total; a
refusal at any point leaves no destination behind.
"""

from __future__ import annotations

import shutil
import tarfile
from pathlib import Path, PurePosixPath
from typing import IO

from quayside.errors import PackageIntegrityError, PayloadTooLargeError, UsageError
from quayside.packager.manifest import check_relative_path

MAX_ARCHIVE_ENTRIES = 10_000
# A pax or GNU long-name header is read whole into memory; no package needs one this big.
MAX_HEADER_BYTES = 1 << 20
MAX_NAME_BYTES = 255  # of one path component, as file systems allow
MAX_PATH_BYTES = 4096
CHUNK = 1 << 20


def extract_tar(
    stream: IO[bytes],
    destination: Path,
    max_bytes: int | None = None,
    max_entries: int = MAX_ARCHIVE_ENTRIES,
) -> Path:
    """Unpack a package tar (uncompressed, from a seekable file) into ``destination``, which it creates.

    ``max_bytes`` bounds the unpacked size and ``max_entries`` the number of entries; both
    are checked on the member list, before anything is written.
    """
    guarded = _HeaderGuard(stream)
    try:
        with tarfile.open(fileobj=guarded, mode="r:") as archive:
            files = _checked_files(archive, max_bytes, max_entries)
            guarded.scanning = False
            destination.mkdir(parents=True)
            try:
                _copy_out(archive, files, destination, max_bytes)
            except BaseException:
                shutil.rmtree(destination, ignore_errors=True)
                raise
    except tarfile.TarError:
        raise UsageError("package upload is not an uncompressed tar archive, or it is cut short") from None
    return destination


class _HeaderGuard:
    """The archive's file, refusing any one read larger than a header can be while the list is read.

    The member list is read by seeking over file data, so the only large reads are the
    payloads of extended headers, which ``tarfile`` reads whole.
    """

    def __init__(self, stream: IO[bytes]) -> None:
        self.stream = stream
        self.scanning = True

    def read(self, size: int = -1) -> bytes:
        if self.scanning and (size < 0 or size > MAX_HEADER_BYTES):
            raise PayloadTooLargeError(
                f"the package archive has an extended header over {MAX_HEADER_BYTES} bytes"
            )
        return self.stream.read(size)

    def seek(self, offset: int, whence: int = 0) -> int:
        return self.stream.seek(offset, whence)

    def tell(self) -> int:
        return self.stream.tell()


def _checked_files(
    archive: tarfile.TarFile, max_bytes: int | None, max_entries: int
) -> list[tuple[tarfile.TarInfo, PurePosixPath]]:
    """The regular files to unpack, once the whole member list has passed every check."""
    layout = _Layout()
    total = 0
    for count, member in enumerate(archive, start=1):
        if count > max_entries:
            raise PayloadTooLargeError(
                f"the package archive has more than {max_entries} entries, the limit "
                "(QUAYSIDE_MAX_ARCHIVE_ENTRIES)"
            )
        kind = _refused_kind(member)
        if kind is not None:
            raise UsageError(
                f"package upload: '{_excerpt(member.name)}' is {kind}; "
                "a package holds regular files and directories only"
            )
        if member.isdir() and member.name.strip("/") in ("", "."):
            continue  # the package directory itself, as `tar -C package -c .` writes it
        if member.isdir():
            layout.add_directory(_member_path(member))
            continue
        total += member.size
        if max_bytes is not None and total > max_bytes:
            raise PayloadTooLargeError(
                f"the package archive unpacks to more than {max_bytes} bytes, the limit "
                "(QUAYSIDE_MAX_ARTIFACT_BYTES)"
            )
        layout.add_file(member, _member_path(member))
    return layout.files


class _Layout:
    """The tree an archive would unpack to, refusing a path twice or as both a file and a directory."""

    def __init__(self) -> None:
        self.files: list[tuple[tarfile.TarInfo, PurePosixPath]] = []
        self.file_paths: set[PurePosixPath] = set()
        self.directories: set[PurePosixPath] = set()

    def add_directory(self, path: PurePosixPath) -> None:
        self._add_directories({path})

    def add_file(self, member: tarfile.TarInfo, path: PurePosixPath) -> None:
        if path in self.file_paths:
            raise UsageError(f"package upload: '{_excerpt(str(path))}' appears twice in the archive")
        if path in self.directories:
            raise UsageError(f"package upload: '{_excerpt(str(path))}' is both a file and a directory")
        self._add_directories(set(path.parents))
        self.file_paths.add(path)
        self.files.append((member, path))

    def _add_directories(self, paths: set[PurePosixPath]) -> None:
        new = {path for path in paths if path.parts} - self.directories
        clash = new & self.file_paths
        if clash:
            raise UsageError(f"package upload: '{_excerpt(str(min(clash)))}' is both a file and a directory")
        self.directories |= new


def _excerpt(text: str, limit: int = 100) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


def _member_path(member: tarfile.TarInfo) -> PurePosixPath:
    try:
        relative = check_relative_path(member.name.rstrip("/") if member.isdir() else member.name)
    except PackageIntegrityError as e:
        raise UsageError(f"package upload: {e.message}") from None
    encoded = str(relative).encode("utf-8", "surrogateescape")
    if len(encoded) > MAX_PATH_BYTES or any(
        len(part.encode("utf-8", "surrogateescape")) > MAX_NAME_BYTES for part in relative.parts
    ):
        raise UsageError(
            f"package upload: a path in the archive is too long (at most {MAX_NAME_BYTES} bytes a "
            f"name and {MAX_PATH_BYTES} in all): '{str(relative)[:100]}...'"
        )
    return relative


def _refused_kind(member: tarfile.TarInfo) -> str | None:
    if member.issym():
        return "a symbolic link"
    if member.islnk():
        return "a hard link"
    if member.ischr() or member.isblk():
        return "a device file"
    if member.isfifo():
        return "a FIFO"
    if member.issparse():
        return "a sparse file"
    if not (member.isfile() or member.isdir()):
        return "not a regular file"
    return None


def _copy_out(
    archive: tarfile.TarFile,
    files: list[tuple[tarfile.TarInfo, PurePosixPath]],
    destination: Path,
    max_bytes: int | None,
) -> None:
    written = 0
    for member, relative in files:
        source = archive.extractfile(member)
        if source is None:
            raise UsageError(f"package upload: '{member.name}' has no content")
        target = destination / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        with source, target.open("xb") as handle:
            while chunk := source.read(CHUNK):
                written += len(chunk)
                if max_bytes is not None and written > max_bytes:
                    raise PayloadTooLargeError(
                        f"the package archive unpacks to more than {max_bytes} bytes, the limit "
                        "(QUAYSIDE_MAX_ARTIFACT_BYTES)"
                    )
                handle.write(chunk)
