"""Artifact downloads streamed out of the artifact store, whole (200) or by ``Range`` (206).

The object is opened, and its first chunk read, before the answer starts, so a missing
artifact (404), an unsatisfiable range (416) or a damaged object that fits in that chunk
(422, its sha256 checked) is answered with its status and message. A larger object's
digest is known only once its last byte is read, after the status is sent: if it does not
match, the last chunk is withheld and the connection closed without completing the body,
so the client sees a download cut short (and the server's log says why), never the wrong
bytes passed off as the whole artifact. A range is not checked (a digest covers the whole).
"""

from __future__ import annotations

import logging
import posixpath
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO, cast
from urllib.parse import quote

from starlette.responses import StreamingResponse
from starlette.types import Send

from quayside.errors import PackageIntegrityError
from quayside.server.ranges import parse_range

CHUNK = 1 << 20
"""How much of an object is read from the store, and handed to the server, at a time."""
DOWNLOAD_HEADERS = {"X-Content-Type-Options": "nosniff", "Content-Security-Policy": "sandbox"}
"""An artifact is never rendered: an uploaded HTML or SVG file must not run as this site."""

log = logging.getLogger("quayside.server")

Opener = Callable[[int | None, int | None], BinaryIO]
"""Opens the object, whole (``None, None``) or its bytes ``[start:end]``."""


class ArtifactResponse(StreamingResponse):
    """A streamed object that ends without completing the body when its digest check fails."""

    def __init__(self, chunks: Iterator[bytes], *, status_code: int, headers: dict[str, str], what: str):
        super().__init__(chunks, status_code=status_code, headers=headers)
        self.what = what

    async def stream_response(self, send: Send) -> None:
        await send({"type": "http.response.start", "status": self.status_code, "headers": self.raw_headers})
        try:
            async for chunk in self.body_iterator:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        except PackageIntegrityError as e:
            # The status is sent; leaving the body incomplete makes the server close the connection.
            log.error("download of %s cut short: %s", self.what, e.message)
            return
        await send({"type": "http.response.body", "body": b"", "more_body": False})


def stream_download(
    open_object: Opener,
    size: int,
    path: str,
    range_header: str | None,
    *,
    media_type: str = "application/octet-stream",
    attachment: bool = True,
) -> ArtifactResponse:
    """The download of an object of ``size`` bytes named ``path``, honouring ``range_header``.

    Call it from a thread (a plain ``def`` handler): it opens the object and reads its first chunk.
    """
    wanted = parse_range(range_header, size)
    stream = open_object(None, None) if wanted is None else open_object(wanted.start, wanted.end)
    try:
        first = stream.read(CHUNK)
    except BaseException:
        stream.close()
        raise
    headers = dict(DOWNLOAD_HEADERS)
    headers["Accept-Ranges"] = "bytes"
    headers["Content-Type"] = media_type
    if attachment:
        headers["Content-Disposition"] = _attachment(path)
    headers["Content-Length"] = str(size if wanted is None else wanted.length)
    status = 200
    if wanted is not None:
        status = 206
        headers["Content-Range"] = wanted.content_range
    return ArtifactResponse(_chunks(first, stream), status_code=status, headers=headers, what=repr(path))


def local_file_download(file: Path, path: str, range_header: str | None, **options: Any) -> ArtifactResponse:
    """:func:`stream_download` of a file on this machine (a registered package's copy)."""
    size = file.stat().st_size
    return stream_download(
        lambda start, end: cast(BinaryIO, _FileSlice(file, start, end)), size, path, range_header, **options
    )


class _FileSlice:
    """The bytes ``[start:end]`` of a local file (all of it for ``None, None``) as a stream."""

    def __init__(self, file: Path, start: int | None, end: int | None) -> None:
        self._handle = file.open("rb")
        self._handle.seek(start or 0)
        self._remaining = None if end is None else end - (start or 0)

    def read(self, size: int = -1, /) -> bytes:
        if self._remaining is None:
            return self._handle.read(size)
        wanted = self._remaining if size < 0 else min(size, self._remaining)
        data = self._handle.read(wanted)
        self._remaining -= len(data)
        return data

    def close(self) -> None:
        self._handle.close()


def _chunks(first: bytes, stream: BinaryIO) -> Iterator[bytes]:
    try:
        if first:
            yield first
        while chunk := stream.read(CHUNK):
            yield chunk
    finally:
        stream.close()


def _attachment(path: str) -> str:
    """``Content-Disposition`` naming the file, as Starlette's FileResponse writes it."""
    name = posixpath.basename(path.rstrip("/")) or "artifact"
    quoted = quote(name)
    if quoted != name:
        return f"attachment; filename*=utf-8''{quoted}"
    return f'attachment; filename="{name}"'
