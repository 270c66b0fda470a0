"""The Range header read against an object's size, and the server's private texts kept out of errors."""

from __future__ import annotations

from pathlib import Path

import pytest

from quayside.config import Settings
from quayside.server.errors import scrub
from quayside.server.ranges import ByteRange, UnsatisfiableRange, parse_range


@pytest.mark.parametrize(
    ("header", "size", "expected"),
    [
        ("bytes=0-0", 10, ByteRange(0, 1, 10)),
        ("bytes=2-5", 10, ByteRange(2, 6, 10)),
        ("bytes=7-", 10, ByteRange(7, 10, 10)),
        ("bytes=-3", 10, ByteRange(7, 10, 10)),
        ("bytes=-30", 10, ByteRange(0, 10, 10)),
        ("bytes=4-400", 10, ByteRange(4, 10, 10)),
        (" BYTES = 1 - 2 ", 10, ByteRange(1, 3, 10)),
    ],
)
def test_a_single_byte_range_is_read_against_the_size(header: str, size: int, expected: ByteRange):
    assert parse_range(header, size) == expected


def test_content_range_names_the_inclusive_last_byte_and_the_size():
    assert ByteRange(2, 6, 10).content_range == "bytes 2-5/10"
    assert ByteRange(2, 6, 10).length == 4


@pytest.mark.parametrize("header", [None, "", "bytes=", "bytes=-", "items=0-1", "bytes=0-1,4-5", "bytes=5-2"])
def test_what_is_not_one_valid_byte_range_is_ignored(header: str | None):
    assert parse_range(header, 10) is None


@pytest.mark.parametrize(
    ("header", "size"), [("bytes=10-", 10), ("bytes=11-20", 10), ("bytes=-0", 10), ("bytes=-5", 0)]
)
def test_a_range_with_no_byte_of_the_object_is_unsatisfiable(header: str, size: int):
    with pytest.raises(UnsatisfiableRange) as caught:
        parse_range(header, size)
    assert caught.value.http_status == 416 and caught.value.size == size


def test_an_object_store_root_is_kept_out_of_error_messages(tmp_path: Path):
    settings = Settings(home=tmp_path, artifact_root="s3://team-bucket/quayside/artifacts")
    message = scrub("could not read 's3://team-bucket/quayside/artifacts/runs/abc/model.onnx'", settings)
    assert message == "could not read '<artifact root>'"
