"""Artifact previews: text, JSON (pretty-printed), CSV (a table) and images, each read within a size limit."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import BinaryIO

MAX_TEXT_BYTES = 256 * 1024
MAX_CSV_ROWS = 200
TEXT_SUFFIXES = {".txt", ".log", ".md", ".yaml", ".yml", ".toml", ".cfg", ".ini", ".py", ".html", ".xml", ""}
CSV_SUFFIXES = {".csv": ",", ".tsv": "\t"}
# SVG is left out on purpose: it can carry script, and a preview must not run an artifact's code.
IMAGE_TYPES = {
    ".png": "image/png",
    ".jpg": "image/jpeg",
    ".jpeg": "image/jpeg",
    ".gif": "image/gif",
    ".webp": "image/webp",
}


@dataclass(frozen=True)
class Preview:
    """What the preview page shows: ``kind`` is text, json, csv, image or none."""

    kind: str
    text: str = ""
    rows: list[list[str]] = field(default_factory=list)
    truncated: bool = False


def preview_kind(path: str) -> str:
    """How an artifact of this name is previewed (``none``: download only)."""
    name = PurePosixPath(path)
    suffix = name.suffix.lower()
    if suffix == ".json":
        return "json"
    if suffix in CSV_SUFFIXES:
        return "csv"
    if suffix in IMAGE_TYPES:
        return "image"
    if suffix in TEXT_SUFFIXES or name.name in ("MLmodel", "Dockerfile", "requirements.txt"):
        return "text"
    return "none"


def image_type(path: str) -> str | None:
    return IMAGE_TYPES.get(PurePosixPath(path).suffix.lower())


def _head(file: Path | BinaryIO) -> tuple[str, bool]:
    if isinstance(file, Path):
        with file.open("rb") as stream:
            data = stream.read(MAX_TEXT_BYTES + 1)
    else:
        data = file.read(MAX_TEXT_BYTES + 1)
    truncated = len(data) > MAX_TEXT_BYTES
    return data[:MAX_TEXT_BYTES].decode("utf-8", errors="replace"), truncated


def read_preview(file: Path | BinaryIO, path: str) -> Preview:
    """The preview of the artifact file ``file`` (named ``path`` in its run), a path or a stream."""
    kind = preview_kind(path)
    if kind in ("none", "image"):
        return Preview(kind)
    text, truncated = _head(file)
    if kind == "json" and not truncated:
        try:
            return Preview("json", json.dumps(json.loads(text), indent=2, ensure_ascii=False))
        except ValueError:
            return Preview("text", text)
    if kind == "csv":
        delimiter = CSV_SUFFIXES[PurePosixPath(path).suffix.lower()]
        rows = []
        for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=delimiter)):
            if number > MAX_CSV_ROWS:
                truncated = True
                break
            rows.append(row)
        return Preview("csv", rows=rows, truncated=truncated)
    return Preview("text", text, truncated=truncated)
