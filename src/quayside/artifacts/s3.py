"""S3ArtifactStore: objects in an S3 bucket under a prefix, through boto3 (the ``s3`` extra).

Any S3 API serves (AWS, MinIO, Ceph, R2...): the endpoint is the one given, else boto3's
default; credentials come from boto3's usual chain (environment, profile, instance role).
A custom endpoint is addressed path-style (``endpoint/bucket/key``), which every S3 API
server answers and which needs no wildcard DNS.

The sha256 recorded at put time is the object's user metadata ``x-amz-meta-sha256``. S3 fixes
an object's metadata when its upload begins, and a streamed object's digest is known only
at its end, so:

- an object smaller than a part (:data:`DEFAULT_PART_SIZE`, 8 MiB, configurable) is read
  into one buffer and sent as one PUT with its digest;
- a larger one is sent as a multipart upload, several parts at a time, to a staging key under
  ``PREFIX/.quayside-tmp/``, then copied server-side to its key with its digest (one copy
  request up to 5 GiB, a multipart copy above), and the staging object is deleted. The
  object appears under its key only complete and with its digest; a failed upload is
  aborted, so no part lingers. What a process killed mid-upload leaves (an open multipart
  upload, a staging object) is what a bucket lifecycle rule on ``PREFIX/.quayside-tmp/``
  (``AbortIncompleteMultipartUpload`` and ``Expiration``, a day) clears.

At most :data:`PARTS_IN_FLIGHT` parts are being sent at once, plus the one being read. botocore's exceptions are translated here,
at the boundary, into :class:`~quayside.errors.UnavailableError` and
:class:`~quayside.errors.UsageError` with a message that names neither a secret nor
botocore's text; the bucket and endpoint go in ``detail``.
"""

from __future__ import annotations

import hashlib
import logging
import re
import uuid
from collections import deque
from collections.abc import Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any, BinaryIO, cast
from urllib.parse import urlsplit, urlunsplit

from quayside.artifacts.keys import check_key, check_prefix, join
from quayside.artifacts.store import ArtifactStore, ObjectInfo
from quayside.artifacts.streams import ObjectReader, SizeCheck, read_up_to, resolve_range
from quayside.errors import (
    MissingExtraError,
    NotFoundError,
    QuaysideError,
    UnavailableError,
    UsageError,
)
from quayside.names import shown
from quayside.scratch import SCRATCH_DIR

MIB = 1 << 20
DEFAULT_PART_SIZE = 8 * MIB
"""The size of a multipart upload's parts, and the size below which an object goes in one PUT
(boto3's own uploads use 8 MiB parts too)."""
PARTS_IN_FLIGHT = 4
"""Parts sent at once: S3 takes parts in parallel, and one at a time a server's uploads ran at
about 0.6x boto3's own. Memory holds at most this many parts plus the one being read."""
MIN_PART_SIZE = 5 * MIB
"""S3's smallest part (all but the last)."""
MAX_PARTS = 10_000
"""S3's most parts in one upload: with 8 MiB parts, objects up to 78 GiB."""
MAX_COPY_BYTES = 5 * 1024 * MIB
"""The largest object one CopyObject request copies; larger ones are copied part by part."""
METADATA_KEY = "sha256"
"""The user-metadata name of the digest (sent and stored as ``x-amz-meta-sha256``)."""
BUCKET_PATTERN = re.compile(r"[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]")
BUCKET_RULE = "3 to 63 lower-case letters, digits, '.' and '-', starting and ending with a letter or digit"

logger = logging.getLogger("quayside.artifacts")

_NOT_FOUND = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED = {
    "403",
    "AccessDenied",
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
}


def check_bucket(bucket: str) -> str:
    """``bucket`` if it is a valid S3 bucket name, else a :class:`UsageError` quoting the rule."""
    if not isinstance(bucket, str) or not BUCKET_PATTERN.fullmatch(bucket) or ".." in bucket:
        raise UsageError(f"{shown(str(bucket))} is not an S3 bucket name: use {BUCKET_RULE}")
    return bucket


def shown_endpoint(endpoint_url: str | None) -> str:
    """An endpoint as a message may show it: scheme, host and port, no user, password or query."""
    if not endpoint_url:
        return "AWS's default endpoint"
    parts = urlsplit(endpoint_url)
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))


class S3ArtifactStore(ArtifactStore):
    """Objects under ``prefix`` in ``bucket``; ``client`` is a boto3 S3 client (made here when None)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        client: Any = None,
        part_size: int = DEFAULT_PART_SIZE,
        connect_timeout_s: float = 10.0,
        read_timeout_s: float = 60.0,
        max_attempts: int = 5,
    ) -> None:
        self.bucket = check_bucket(bucket)
        self.prefix = check_prefix(prefix)
        if isinstance(part_size, bool) or not isinstance(part_size, int) or part_size < MIN_PART_SIZE:
            raise UsageError(
                f"the S3 part size must be at least {MIN_PART_SIZE} bytes (5 MiB), not {part_size!r}"
            )
        self.part_size = part_size
        self.max_copy_bytes = MAX_COPY_BYTES
        self._client = client or _make_client(endpoint_url, connect_timeout_s, read_timeout_s, max_attempts)
        self.endpoint = shown_endpoint(endpoint_url or getattr(self._client.meta, "endpoint_url", None))

    @property
    def description(self) -> str:
        return f"s3://{join(self.bucket, self.prefix)} at {self.endpoint}"

    # --- writing -------------------------------------------------------------------------

    def put(self, key: str, stream: BinaryIO, *, size: int | None = None) -> ObjectInfo:
        key = check_key(key)
        sizes = SizeCheck(key, size)
        parts = _Parts(stream, self.part_size, sizes)
        if parts.single:
            data = parts.take()
            sha256 = hashlib.sha256(data).hexdigest()
            with self._translated(f"store artifact {shown(key)}"):
                answer = self._client.put_object(
                    Bucket=self.bucket, Key=self._name(key), Body=data, Metadata={METADATA_KEY: sha256}
                )
            return ObjectInfo(key, len(data), sha256, _answered_at(answer))
        staging = join(self.prefix, f"{SCRATCH_DIR}/{uuid.uuid4().hex}")
        sha256 = self._upload_parts(staging, key, parts)
        try:
            answer = self._copy(staging, self._name(key), key, sizes.seen, sha256)
        finally:
            self._delete_staging(staging)
        return ObjectInfo(key, sizes.seen, sha256, _answered_at(answer))

    def _upload_parts(self, staging: str, key: str, parts: _Parts) -> str:
        """Send the parts to ``staging`` as a multipart upload; returns their sha256."""
        action = f"store artifact {shown(key)}"
        with self._translated(action):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=staging, **self._checksum_args()
            )["UploadId"]
        digest = hashlib.sha256()
        in_flight: deque[Future[dict[str, Any]]] = deque()
        sent: list[dict[str, Any]] = []
        number = 0

        def send(data: bytearray, part_number: int) -> dict[str, Any]:
            with self._translated(action):
                answer = self._client.upload_part(
                    Bucket=self.bucket,
                    Key=staging,
                    UploadId=upload_id,
                    PartNumber=part_number,
                    Body=data,
                    **self._checksum_args(),
                )
            return _part(answer, part_number)

        try:
            with ThreadPoolExecutor(max_workers=PARTS_IN_FLIGHT, thread_name_prefix="quayside-s3") as pool:
                try:
                    for data in parts:
                        if number == MAX_PARTS:
                            raise UsageError(
                                f"artifact {shown(key)} is over {MAX_PARTS} parts of {self.part_size} bytes: "
                                "raise the S3 part size"
                            )
                        digest.update(data)
                        number += 1
                        in_flight.append(pool.submit(send, data, number))
                        del data  # the pool holds it until sent
                        if len(in_flight) == PARTS_IN_FLIGHT:
                            sent.append(in_flight.popleft().result())
                    while in_flight:
                        sent.append(in_flight.popleft().result())
                finally:
                    for pending in in_flight:
                        pending.cancel()
            with self._translated(action):
                self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=staging, UploadId=upload_id, MultipartUpload={"Parts": sent}
                )
        except BaseException:
            self._abort(staging, upload_id)
            raise
        return digest.hexdigest()

    def _copy(self, source: str, target: str, key: str, size: int, sha256: str) -> Mapping[str, Any]:
        """Copy ``source`` to ``target`` inside the bucket with the digest as its metadata; the last answer."""
        action = f"store artifact {shown(key)}"
        copy_source = {"Bucket": self.bucket, "Key": source}
        metadata = {METADATA_KEY: sha256}
        if size <= self.max_copy_bytes:
            with self._translated(action):
                return self._client.copy_object(
                    Bucket=self.bucket,
                    Key=target,
                    CopySource=copy_source,
                    Metadata=metadata,
                    MetadataDirective="REPLACE",
                )
        with self._translated(action):
            upload_id = self._client.create_multipart_upload(
                Bucket=self.bucket, Key=target, Metadata=metadata
            )["UploadId"]  # no part checksums: S3 copies within itself, and not every server returns them
        part_size = max(self.part_size, -(-size // MAX_PARTS))
        parts: list[dict[str, Any]] = []
        try:
            for offset in range(0, size, part_size):
                last = min(offset + part_size, size) - 1
                with self._translated(action):
                    answer = self._client.upload_part_copy(
                        Bucket=self.bucket,
                        Key=target,
                        UploadId=upload_id,
                        PartNumber=len(parts) + 1,
                        CopySource=copy_source,
                        CopySourceRange=f"bytes={offset}-{last}",
                    )
                parts.append(_part(answer["CopyPartResult"], len(parts) + 1))
            with self._translated(action):
                return self._client.complete_multipart_upload(
                    Bucket=self.bucket, Key=target, UploadId=upload_id, MultipartUpload={"Parts": parts}
                )
        except BaseException:
            self._abort(target, upload_id)
            raise

    def _checksum_args(self) -> dict[str, str]:
        """What boto3's own uploads (s3transfer) send: CRC32 part checksums, unless the client is set
        to send checksums only where required (``AWS_REQUEST_CHECKSUM_CALCULATION=when_required``, for
        S3 API servers that do not know them)."""
        config = getattr(self._client.meta, "config", None)
        if getattr(config, "request_checksum_calculation", None) == "when_supported":
            return {"ChecksumAlgorithm": "CRC32"}
        return {}

    def _delete_staging(self, name: str) -> None:
        """Delete a staging object; a failure leaves it to the lifecycle rule and hides nothing."""
        try:
            self._client.delete_object(Bucket=self.bucket, Key=name)
        except Exception as e:  # the put's own outcome is what the caller must see
            logger.warning(
                "could not delete the staging object %s in %s (%s); a lifecycle rule must clear it",
                name,
                self.description,
                type(e).__name__,
            )

    def _abort(self, name: str, upload_id: str) -> None:
        """Abort a multipart upload; a failure to abort does not hide the failure that caused it."""
        try:
            self._client.abort_multipart_upload(Bucket=self.bucket, Key=name, UploadId=upload_id)
        except Exception as e:  # the upload's own error is what the caller must see
            logger.warning(
                "could not abort the multipart upload of %s in %s (%s); a lifecycle rule must clear it",
                name,
                self.description,
                type(e).__name__,
            )

    def delete(self, key: str) -> None:
        key = check_key(key)
        with self._translated(f"delete artifact {shown(key)}"):
            self._client.delete_object(Bucket=self.bucket, Key=self._name(key))

    def delete_prefix(self, prefix: str) -> int:
        prefix = check_prefix(prefix)
        if not prefix:
            return super().delete_prefix(prefix)  # refuses, with the reason
        removed = 0
        batch: list[str] = []
        for info in self.list(prefix):
            batch.append(self._name(info.key))
            if len(batch) == 1000:  # DeleteObjects takes at most 1000 keys
                removed += self._delete_batch(batch, prefix)
                batch = []
        if batch:
            removed += self._delete_batch(batch, prefix)
        return removed

    def _delete_batch(self, names: list[str], prefix: str) -> int:
        with self._translated(f"delete the artifacts under {shown(prefix)}"):
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": [{"Key": name} for name in names], "Quiet": True}
            )
        failed = answer.get("Errors") or []
        if failed:
            codes = sorted({str(error.get("Code")) for error in failed})
            raise UnavailableError(
                f"{len(failed)} of the artifacts under {shown(prefix)} could not be deleted",
                detail=f"{self.description}; S3 error codes {', '.join(codes)}",
            )
        return len(names)

    # --- reading -------------------------------------------------------------------------

    def open(self, key: str, *, start: int | None = None, end: int | None = None) -> BinaryIO:
        key = check_key(key)
        action = f"read artifact {shown(key)}"
        if start is None and end is None:
            with self._translated(action, missing=key):
                answer = self._client.get_object(Bucket=self.bucket, Key=self._name(key))
            sha256 = (answer.get("Metadata") or {}).get(METADATA_KEY)
            body = _Body(answer["Body"], self, action)
            return cast(
                BinaryIO, ObjectReader(body, key=key, length=int(answer["ContentLength"]), sha256=sha256)
            )
        # A range needs the size to be checked (S3 cuts a range short silently), so: HEAD, then a
        # GET of exactly those bytes of exactly that version (If-Match), or none for an empty range.
        with self._translated(action, missing=key):
            head = self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        first, stop = resolve_range(key, int(head["ContentLength"]), start, end)
        if first == stop:
            return cast(BinaryIO, ObjectReader(None, key=key, length=0))
        with self._translated(action, missing=key):
            answer = self._client.get_object(
                Bucket=self.bucket,
                Key=self._name(key),
                Range=f"bytes={first}-{stop - 1}",
                IfMatch=head["ETag"],
            )
        return cast(BinaryIO, ObjectReader(_Body(answer["Body"], self, action), key=key, length=stop - first))

    def stat(self, key: str) -> ObjectInfo | None:
        key = check_key(key)
        try:
            with self._translated(f"look up artifact {shown(key)}", missing=key):
                head = self._client.head_object(Bucket=self.bucket, Key=self._name(key))
        except NotFoundError:
            return None
        sha256 = (head.get("Metadata") or {}).get(METADATA_KEY)
        return ObjectInfo(key, int(head["ContentLength"]), sha256, head["LastModified"].astimezone(UTC))

    def list(self, prefix: str = "") -> Iterator[ObjectInfo]:
        prefix = check_prefix(prefix)
        folder = join(self.prefix, prefix)
        start = f"{folder}/" if folder else ""
        staging = join(self.prefix, SCRATCH_DIR) + "/"
        with self._translated(f"list the artifacts under {shown(prefix or '/')}"):
            pages = self._client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=start)
            for page in pages:
                for entry in page.get("Contents", []):
                    name = entry["Key"]
                    if name.startswith(staging) or name.endswith("/"):  # writes in progress, folder markers
                        continue
                    key = name[len(self.prefix) + 1 :] if self.prefix else name
                    yield ObjectInfo(key, int(entry["Size"]), None, entry["LastModified"].astimezone(UTC))

    def leftovers(self, *, older_than: datetime) -> Iterator[ObjectInfo]:
        """What puts that died left under ``PREFIX/.quayside-tmp/`` before ``older_than``, for ``quayside gc``:
        staging objects, and open multipart uploads (key ``NAME#UPLOAD_ID``, size 0: parts are not listed)."""
        staging = join(self.prefix, SCRATCH_DIR) + "/"
        cut = len(self.prefix) + 1 if self.prefix else 0
        with self._translated("list the artifact store's staging objects"):
            for page in self._client.get_paginator("list_objects_v2").paginate(
                Bucket=self.bucket, Prefix=staging
            ):
                for entry in page.get("Contents", []):
                    if entry["LastModified"] < older_than:
                        modified = entry["LastModified"].astimezone(UTC)
                        yield ObjectInfo(entry["Key"][cut:], int(entry["Size"]), None, modified)
            uploads = self._client.get_paginator("list_multipart_uploads")
            for page in uploads.paginate(Bucket=self.bucket, Prefix=staging):
                for upload in page.get("Uploads", []):
                    if upload["Initiated"] < older_than:
                        key = f"{upload['Key'][cut:]}#{upload['UploadId']}"
                        yield ObjectInfo(key, 0, None, upload["Initiated"].astimezone(UTC))

    def remove_leftover(self, key: str) -> None:
        """Remove one of :meth:`leftovers` (a staging object, or abort an open upload)."""
        name, _, upload_id = key.partition("#")
        if not name.startswith(f"{SCRATCH_DIR}/"):
            raise UsageError(f"{shown(key)} is not a staging object of the artifact store")
        with self._translated(f"remove the staging object {shown(name)}"):
            if upload_id:
                self._client.abort_multipart_upload(
                    Bucket=self.bucket, Key=self._name(name), UploadId=upload_id
                )
            else:
                self._client.delete_object(Bucket=self.bucket, Key=self._name(name))

    def check(self) -> None:
        with self._translated("reach the artifact bucket"):
            self._client.head_bucket(Bucket=self.bucket)

    # --- helpers -------------------------------------------------------------------------

    def _name(self, key: str) -> str:
        return join(self.prefix, key)

    @contextmanager
    def _translated(self, action: str, *, missing: str | None = None) -> Iterator[None]:
        """botocore's exceptions as Quayside's; ``missing``: the key a 404 means is absent."""
        try:
            yield
        except QuaysideError:
            raise
        except Exception as e:
            translated = _translate(e, self, action, missing)
            if translated is None:
                raise
            raise translated from None


class _Parts:
    """A stream as parts of ``part_size`` bytes, read one at a time; the first is read at once."""

    def __init__(self, stream: BinaryIO, part_size: int, sizes: SizeCheck) -> None:
        self._stream = stream
        self._part_size = part_size
        self._sizes = sizes
        self._next: bytearray | None = self._read()
        self.single = len(self._next) < part_size
        """Whether the whole stream fits in the first part (it has ended)."""

    def take(self) -> bytearray:
        """The first part, handed over (this object keeps no reference to it)."""
        data, self._next = self._next or bytearray(), None
        return data

    def __iter__(self) -> Iterator[bytearray]:
        while True:
            data = self.take() if self._next is not None else self._read()
            if not data:
                return
            yield data
            del data

    def _read(self) -> bytearray:
        data = read_up_to(self._stream, self._part_size)
        self._sizes.add(len(data))
        if len(data) < self._part_size:
            self._sizes.finish()
        return data


class _Body:
    """A response body whose read errors (a dropped connection, a timeout) come out translated."""

    def __init__(self, body: Any, store: S3ArtifactStore, action: str) -> None:
        self._body = body
        self._store = store
        self._action = action

    def read(self, size: int = -1, /) -> bytes:
        with self._store._translated(self._action):
            return self._body.read(size)

    def close(self) -> None:
        self._body.close()


def _part(answer: Mapping[str, Any], number: int) -> dict[str, Any]:
    """A part as CompleteMultipartUpload lists it: its ETag and, where sent, its checksum."""
    part = {"ETag": answer["ETag"], "PartNumber": number}
    if "ChecksumCRC32" in answer:
        part["ChecksumCRC32"] = answer["ChecksumCRC32"]
    return part


def _answered_at(answer: Mapping[str, Any]) -> datetime:
    """When S3 answered (its ``Date`` header: the time of writing, on S3's clock), else now."""
    date = answer.get("ResponseMetadata", {}).get("HTTPHeaders", {}).get("date")
    try:
        return parsedate_to_datetime(date).astimezone(UTC)
    except (TypeError, ValueError):
        return datetime.now(UTC)


def _make_client(
    endpoint_url: str | None, connect_timeout_s: float, read_timeout_s: float, max_attempts: int
) -> Any:
    try:
        import boto3
        from botocore.config import Config
    except ImportError as e:
        raise MissingExtraError("s3", "an s3:// artifact root") from e
    config = Config(
        connect_timeout=connect_timeout_s,
        read_timeout=read_timeout_s,
        retries={"max_attempts": max_attempts, "mode": "standard"},
        s3={"addressing_style": "path"} if endpoint_url else None,
    )
    return boto3.session.Session().client("s3", endpoint_url=endpoint_url, config=config)


def _translate(
    error: Exception, store: S3ArtifactStore, action: str, missing: str | None
) -> QuaysideError | None:
    """The Quayside error for a botocore one (None: not botocore's; let it through as it is)."""
    from botocore import exceptions as boto

    where = f"bucket {store.bucket} at {store.endpoint}"
    if isinstance(error, boto.NoCredentialsError | boto.PartialCredentialsError):
        return UsageError(
            f"could not {action}: no S3 credentials were found; set AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY, or AWS_PROFILE",
            detail=where,
        )
    if isinstance(error, boto.ClientError):
        code = str(error.response.get("Error", {}).get("Code", "unknown"))
        status = str(error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", ""))
        return _client_error(code, status, store, action, missing, where)
    if isinstance(
        error,
        boto.EndpointConnectionError
        | boto.ConnectTimeoutError
        | boto.ReadTimeoutError
        | boto.ConnectionClosedError
        | boto.ResponseStreamingError,
    ):
        return UnavailableError(
            f"could not {action}: the S3 endpoint cannot be reached or stopped answering; "
            "check QUAYSIDE_S3_ENDPOINT_URL and the network",
            detail=f"{where}: {type(error).__name__}",
        )
    if isinstance(error, boto.BotoCoreError):
        return UnavailableError(
            f"could not {action}: the S3 client failed", detail=f"{where}: {type(error).__name__}"
        )
    return None


def _client_error(
    code: str, status: str, store: S3ArtifactStore, action: str, missing: str | None, where: str
) -> QuaysideError:
    if code == "NoSuchBucket" or (code in _NOT_FOUND and missing is None):
        return UsageError(
            f"could not {action}: the bucket does not exist; create it or fix QUAYSIDE_ARTIFACT_ROOT",
            detail=where,
        )
    if code in _NOT_FOUND:
        return NotFoundError(f"there is no artifact {shown(missing or '')}")
    if code == "KeyTooLongError":
        return UsageError(f"could not {action}: the bucket's prefix and the key are over S3's 1024 bytes")
    if code in _DENIED or status == "403":
        return UsageError(
            f"could not {action}: the S3 credentials are not allowed to use the bucket ({code})",
            detail=where,
        )
    if code in ("PreconditionFailed", "412"):
        return UnavailableError(
            f"could not {action}: it was replaced while being read; read it again", detail=where
        )
    if code in ("InvalidRange", "416"):
        return UnavailableError(
            f"could not {action}: it changed size while being read; read it again", detail=where
        )
    return UnavailableError(f"could not {action}: S3 refused the request ({code})", detail=where)
