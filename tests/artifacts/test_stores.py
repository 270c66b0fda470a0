"""Both artifact stores keep the same promises: streamed puts with digests, whole and ranged reads
checked, nothing visible from a failed put, listing, prefix deletion and key checks."""

from __future__ import annotations

import hashlib
import io
import os
import shutil
import tracemalloc
from pathlib import Path

import pytest

from quayside.artifacts import LocalArtifactStore
from quayside.artifacts.s3 import MIB
from quayside.errors import NotFoundError, PackageIntegrityError, RangeNotSatisfiableError, UsageError


class GeneratedStream(io.RawIOBase):
    """``size`` bytes made chunk by chunk as they are read (never all at once); knows their sha256.

    With ``fail_after``, raises once that many bytes have been read, as a dropped client would.
    """

    def __init__(self, size: int, *, fail_after: int | None = None) -> None:
        super().__init__()
        self.size = size
        self.position = 0
        self.fail_after = fail_after
        self.largest_read = 0
        self.digest = hashlib.sha256()
        self._block = os.urandom(MIB)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if self.fail_after is not None and self.position >= self.fail_after:
            raise ConnectionResetError("the client went away")
        count = min(len(buffer), self.size - self.position, MIB)
        self.largest_read = max(self.largest_read, len(buffer))
        offset = self.position % MIB
        piece = (self._block[offset:] + self._block[:offset])[:count]
        piece = self.position.to_bytes(8, "big")[: min(8, count)] + piece[8:]
        buffer[:count] = piece
        self.position += count
        self.digest.update(piece)
        return count


def read_all(store, key: str, **range_) -> bytes:
    with store.open(key, **range_) as stream:
        return stream.read()


def sha256_of_stream(stream) -> tuple[str, int]:
    digest = hashlib.sha256()
    total = 0
    while chunk := stream.read(MIB):
        digest.update(chunk)
        total += len(chunk)
    return digest.hexdigest(), total


# --- round trips -------------------------------------------------------------------------------


def test_a_small_object_round_trips_with_its_sha256(subject):
    store = subject.store
    data = b"weights of a small model\n" * 40

    info = store.put("runs/abc/model.bin", io.BytesIO(data))

    assert (info.key, info.size, info.sha256) == (
        "runs/abc/model.bin",
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    assert read_all(store, "runs/abc/model.bin") == data
    stat = store.stat("runs/abc/model.bin")
    assert (stat.size, stat.sha256) == (info.size, info.sha256)
    assert stat.modified.tzinfo is not None
    assert store.exists("runs/abc/model.bin")
    if subject.kind == "s3":
        assert "PutObject" in subject.calls and "UploadPart" not in subject.calls


def test_an_empty_object_round_trips(subject):
    info = subject.store.put("empty", io.BytesIO(b""))

    assert (info.size, info.sha256) == (0, hashlib.sha256(b"").hexdigest())
    assert read_all(subject.store, "empty") == b""
    assert subject.store.stat("empty").size == 0


def test_a_put_replaces_the_object_under_the_key(subject):
    subject.store.put("report.json", io.BytesIO(b"first"))
    info = subject.store.put("report.json", io.BytesIO(b"second, longer"))

    assert read_all(subject.store, "report.json") == b"second, longer"
    assert subject.store.stat("report.json").sha256 == info.sha256


def test_an_80_mib_object_streams_through_in_bounded_memory_in_parts_on_s3(subject):
    source = GeneratedStream(80 * MIB)
    tracemalloc.start()
    try:
        info = subject.store.put("registry/big/weights.bin", source)
        with subject.store.open("registry/big/weights.bin") as stream:
            read_back = sha256_of_stream(stream)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()

    assert (info.size, info.sha256) == (80 * MIB, source.digest.hexdigest())
    assert read_back == (source.digest.hexdigest(), 80 * MIB)
    assert subject.store.stat("registry/big/weights.bin").sha256 == info.sha256
    assert source.largest_read <= MIB  # the store asks the source for a chunk at a time
    assert peak < 24 * MIB, f"the store held {peak / MIB:.0f} MiB at once for an 80 MiB object"
    assert subject.leftovers() == []
    if subject.kind == "s3":
        assert subject.calls.count("UploadPart") == 16  # 5 MiB parts
        assert {"CreateMultipartUpload", "CompleteMultipartUpload", "CopyObject"} <= set(subject.calls)
        assert "PutObject" not in subject.calls


def test_an_object_over_the_copy_limit_is_copied_into_place_part_by_part(s3_subject):
    subject = s3_subject
    subject.store.max_copy_bytes = 8 * MIB
    source = GeneratedStream(12 * MIB)

    info = subject.store.put("big", source)

    assert subject.calls.count("UploadPartCopy") == 3 and "CopyObject" not in subject.calls
    assert info.sha256 == source.digest.hexdigest() == subject.store.stat("big").sha256
    with subject.store.open("big") as stream:
        assert sha256_of_stream(stream) == (info.sha256, 12 * MIB)
    assert subject.leftovers() == []


def test_a_declared_size_is_checked_and_a_wrong_one_stores_nothing(subject):
    subject.store.put("exact", io.BytesIO(b"12345"), size=5)

    with pytest.raises(UsageError, match="ended after 3 bytes; 5 were declared"):
        subject.store.put("short", io.BytesIO(b"123"), size=5)
    with pytest.raises(UsageError, match="more than the 2 bytes declared"):
        subject.store.put("long", io.BytesIO(b"123"), size=2)

    assert [info.key for info in subject.store.list()] == ["exact"]
    assert subject.leftovers() == []


# --- ranged reads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("start", "end", "expected"),
    [
        (None, 10, slice(0, 10)),
        (400, 500, slice(400, 500)),
        (990, None, slice(990, 1000)),
        (500, 500, slice(0, 0)),
    ],
    ids=["first-bytes", "middle", "last-bytes", "empty"],
)
def test_a_range_reads_those_bytes_only(subject, start, end, expected):
    data = os.urandom(1000)
    subject.store.put("blob", io.BytesIO(data))

    assert read_all(subject.store, "blob", start=start, end=end) == data[expected]


def test_a_range_past_the_end_is_refused_with_the_size(subject):
    subject.store.put("blob", io.BytesIO(b"x" * 1000))

    with pytest.raises(
        RangeNotSatisfiableError, match=r"reaches past the end of artifact 'blob', which is 1000 bytes"
    ):
        subject.store.open("blob", start=990, end=1010)
    with pytest.raises(RangeNotSatisfiableError):
        subject.store.open("blob", start=1001)
    with pytest.raises(UsageError, match="starts after it ends"):
        subject.store.open("blob", start=20, end=10)
    with pytest.raises(UsageError, match="whole number >= 0"):
        subject.store.open("blob", start=-1)


def test_a_missing_object_is_not_found(subject):
    with pytest.raises(NotFoundError, match="there is no artifact 'nothing/here'"):
        subject.store.open("nothing/here")
    with pytest.raises(NotFoundError):
        subject.store.open("nothing/here", start=0, end=1)
    assert subject.store.stat("nothing/here") is None
    assert not subject.store.exists("nothing/here")
    subject.store.delete("nothing/here")  # nothing to do, no error


# --- integrity ---------------------------------------------------------------------------------


def test_an_altered_object_is_refused_at_the_end_of_a_whole_read(subject):
    data = os.urandom(4096)
    subject.store.put("model.onnx", io.BytesIO(data))
    subject.replace_bytes("model.onnx", bytes([data[0] ^ 1]) + data[1:])

    stream = subject.store.open("model.onnx")
    assert stream.read(1000)  # the damage shows only once every byte has been seen
    with pytest.raises(PackageIntegrityError, match="does not match the sha256 recorded"):
        stream.read()
    stream.close()
    assert read_all(subject.store, "model.onnx", start=1, end=4096) == data[1:]  # ranges are not checked


def test_an_object_cut_short_behind_the_stores_back_is_refused(subject):
    data = os.urandom(4096)
    subject.store.put("model.onnx", io.BytesIO(data))
    subject.replace_bytes("model.onnx", data[:100])

    with pytest.raises(PackageIntegrityError):
        read_all(subject.store, "model.onnx")


@pytest.mark.parametrize("size", [3 * MIB, 12 * MIB], ids=["one-put", "multipart"])
def test_a_put_whose_stream_fails_leaves_nothing_visible(subject, size):
    source = GeneratedStream(size, fail_after=size - MIB)

    with pytest.raises(ConnectionResetError):
        subject.store.put("runs/abc/partial.bin", source)

    assert not subject.store.exists("runs/abc/partial.bin")
    assert list(subject.store.list()) == []
    assert subject.leftovers() == []
    assert subject.everything() == []


def test_a_failed_put_leaves_the_object_it_would_have_replaced(subject):
    subject.store.put("kept", io.BytesIO(b"the good version"))

    with pytest.raises(ConnectionResetError):
        subject.store.put("kept", GeneratedStream(8 * MIB, fail_after=6 * MIB))

    assert read_all(subject.store, "kept") == b"the good version"
    assert subject.leftovers() == []


# --- listing and deletion ----------------------------------------------------------------------


def _fill(store, keys):
    for key in keys:
        store.put(key, io.BytesIO(key.encode()))


def test_a_listing_gives_the_objects_under_a_folder_sorted(subject):
    _fill(subject.store, ["runs/b/x", "runs/a/2", "runs/a/1", "runs/a/sub/3", "runs/ab/4", "registry/m/k"])

    listed = list(subject.store.list("runs/a"))

    assert [info.key for info in listed] == ["runs/a/1", "runs/a/2", "runs/a/sub/3"]
    assert [info.size for info in listed] == [8, 8, 12]
    assert all(info.sha256 is None and info.modified.tzinfo is not None for info in listed)
    assert [i.key for i in subject.store.list("runs/a/")] == ["runs/a/1", "runs/a/2", "runs/a/sub/3"]
    assert [i.key for i in subject.store.list()] == sorted(
        ["runs/b/x", "runs/a/2", "runs/a/1", "runs/a/sub/3", "runs/ab/4", "registry/m/k"]
    )
    assert list(subject.store.list("nothing")) == []


def test_deleting_a_prefix_removes_that_folder_only(subject):
    _fill(subject.store, ["runs/a/1", "runs/a/sub/2", "runs/ab/3", "runs/b/4"])

    assert subject.store.delete_prefix("runs/a") == 2

    assert [i.key for i in subject.store.list()] == ["runs/ab/3", "runs/b/4"]
    assert subject.store.delete_prefix("runs/a") == 0
    with pytest.raises(UsageError, match="never empties a whole artifact root"):
        subject.store.delete_prefix("")
    subject.store.delete("runs/b/4")
    assert [i.key for i in subject.store.list()] == ["runs/ab/3"]


BAD_KEYS = [
    "../outside",
    "runs/../../outside",
    "/etc/passwd",
    "~/notes",
    "runs\\abc",
    "runs/\x00abc",
    "runs//abc",
    "./runs",
    "runs/abc/",
    "",
    ".quayside-tmp/upload-1",
    "runs/model.bin.quayside-sha256",
    "x" * 256,
]


@pytest.mark.parametrize("key", BAD_KEYS)
def test_a_key_that_could_escape_or_clash_is_refused_before_any_io(subject, key):
    for call in (
        lambda: subject.store.put(key, io.BytesIO(b"x")),
        lambda: subject.store.open(key),
        lambda: subject.store.stat(key),
        lambda: subject.store.delete(key),
    ):
        with pytest.raises(UsageError) as refused:
            call()
        assert "\n" not in str(refused.value) and "artifact key" in str(refused.value)
    assert subject.everything() == []


# --- the local store's own cases ------------------------------------------------------------


def test_a_symlink_inside_the_local_root_cannot_carry_a_key_outside(tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_bytes(b"not an artifact")
    store = LocalArtifactStore(tmp_path / "root")
    (tmp_path / "root").mkdir()
    (tmp_path / "root" / "runs").symlink_to(outside)

    with pytest.raises(UsageError, match="leads outside the artifact root"):
        store.open("runs/secret")
    with pytest.raises(UsageError, match="leads outside the artifact root"):
        store.put("runs/new", io.BytesIO(b"x"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]


def test_a_local_file_without_a_record_reads_unverified(tmp_path):
    (tmp_path / "runs").mkdir()
    (tmp_path / "runs" / "legacy.txt").write_bytes(b"written before the store existed")
    store = LocalArtifactStore(tmp_path)

    assert store.stat("runs/legacy.txt").sha256 is None
    assert read_all(store, "runs/legacy.txt") == b"written before the store existed"


def test_a_copied_local_root_still_verifies_its_objects(tmp_path):
    original = LocalArtifactStore(tmp_path / "original")
    original.put("runs/a/model.bin", io.BytesIO(b"weights"))
    shutil.copytree(tmp_path / "original", tmp_path / "copy")  # new inode numbers
    copy = LocalArtifactStore(tmp_path / "copy")

    assert read_all(copy, "runs/a/model.bin") == b"weights"
    (tmp_path / "copy" / "runs" / "a" / "model.bin").write_bytes(b"WEIGHTS")
    with pytest.raises(PackageIntegrityError):
        read_all(copy, "runs/a/model.bin")


def test_the_local_store_keeps_plain_files_with_records_beside_them(tmp_path):
    store = LocalArtifactStore(tmp_path)
    store.put("runs/a/model.bin", io.BytesIO(b"weights"))

    assert (tmp_path / "runs" / "a" / "model.bin").read_bytes() == b"weights"
    assert sorted(p.name for p in (tmp_path / "runs" / "a").iterdir()) == [
        "model.bin",
        "model.bin.quayside-sha256",
    ]


def test_a_local_key_cannot_lie_under_another_object(tmp_path):
    store = LocalArtifactStore(tmp_path)
    store.put("runs/a", io.BytesIO(b"a file"))

    with pytest.raises(UsageError, match="lies under another artifact, not a folder"):
        store.put("runs/a/b", io.BytesIO(b"x"))
    with pytest.raises(UsageError, match="is a folder of other artifacts"):
        store.put("runs", io.BytesIO(b"x"))
    assert [info.key for info in store.list()] == ["runs/a"]
    assert list((tmp_path / ".quayside-tmp").iterdir()) == []


def test_an_s3_listing_hides_writes_in_progress_and_folder_markers(s3_subject):
    client, bucket = s3_subject.client, s3_subject.bucket
    s3_subject.store.put("runs/a/model.bin", io.BytesIO(b"weights"))
    client.put_object(Bucket=bucket, Key="team/artifacts/.quayside-tmp/0123abcd", Body=b"half")
    client.put_object(Bucket=bucket, Key="team/artifacts/runs/", Body=b"")
    client.put_object(Bucket=bucket, Key="elsewhere/x", Body=b"not ours")

    assert [info.key for info in s3_subject.store.list()] == ["runs/a/model.bin"]


def test_a_local_put_that_dies_between_its_two_renames_leaves_the_old_object_readable(tmp_path, monkeypatch):
    store = LocalArtifactStore(tmp_path)
    store.put("runs/a/model.bin", io.BytesIO(b"old weights"))
    renames = []
    real_replace = os.replace

    def replace_then_die(source, target):
        renames.append(Path(target).name)
        if len(renames) == 2:  # the record is in place; the file's rename never happens
            raise KeyboardInterrupt
        real_replace(source, target)

    monkeypatch.setattr(os, "replace", replace_then_die)
    with pytest.raises(KeyboardInterrupt):
        store.put("runs/a/model.bin", io.BytesIO(b"new weights"))
    monkeypatch.undo()

    assert renames == ["model.bin.quayside-sha256", "model.bin"]
    assert read_all(store, "runs/a/model.bin") == b"old weights"
    store.put("runs/a/model.bin", io.BytesIO(b"new weights"))
    assert read_all(store, "runs/a/model.bin") == b"new weights"
