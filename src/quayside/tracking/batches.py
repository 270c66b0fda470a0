"""What one log-batch request to ``quayside server`` may carry, and a larger batch cut to fit.

The server's batch route refuses a request with more than :data:`MAX_BATCH_POINTS` metric
points, :data:`MAX_BATCH_PARAMS` params or :data:`MAX_BATCH_TAGS` tags (400), and a body over
``QUAYSIDE_MAX_REQUEST_BYTES`` (413, 1 MiB by default). The route declares these counts and
the REST backend cuts a batch by them, so the two cannot drift apart; the bytes are the
server's setting, which a client cannot read, so the client keeps well below its default
(:data:`BATCH_REQUEST_BYTES`).

Pure: entries in, encoded request bodies out; the REST backend sends them.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field

from quayside.tracking.entities import Metric, check_metric, param_values, tag_values

MAX_BATCH_POINTS = 10_000
"""Metric points in one request to the batch route."""
MAX_BATCH_PARAMS = 1_000
"""Params in one request to the batch route."""
MAX_BATCH_TAGS = 1_000
"""Tags in one request to the batch route."""
BATCH_REQUEST_BYTES = 512 * 1024
"""The most bytes the client puts in one batch request: half the server's default body limit
(``QUAYSIDE_MAX_REQUEST_BYTES``, 1 MiB), so a server whose limit was lowered somewhat still
takes every request. A metric point is 50 to 90 bytes, so one request carries 6,000 or more."""

# '{"metrics":[],"params":{},"tags":{}}' is 36 bytes; the rest is slack.
_BODY_OVERHEAD = 64
_FIELDS = (("params", MAX_BATCH_PARAMS), ("tags", MAX_BATCH_TAGS), ("metrics", MAX_BATCH_POINTS))


def _encode(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()


@dataclass
class _Body:
    """One request's share of a batch: encoded entries by field, and the bytes they make."""

    entries: dict[str, list[bytes]] = field(default_factory=lambda: {name: [] for name, _ in _FIELDS})
    size: int = _BODY_OVERHEAD

    def takes(self, name: str, limit: int, entry: bytes, max_bytes: int) -> bool:
        if len(self.entries[name]) >= limit:
            return False
        empty = self.size == _BODY_OVERHEAD
        return empty or self.size + len(entry) + 1 <= max_bytes

    def add(self, name: str, entry: bytes) -> None:
        self.entries[name].append(entry)
        self.size += len(entry) + 1

    def encode(self) -> bytes:
        params, tags, metrics = (b",".join(self.entries[name]) for name in ("params", "tags", "metrics"))
        return b'{"metrics":[' + metrics + b'],"params":{' + params + b'},"tags":{' + tags + b"}}"


def batch_bodies(
    metrics: Sequence[Metric],
    params: Mapping[str, str],
    tags: Mapping[str, str],
    *,
    max_bytes: int = BATCH_REQUEST_BYTES,
) -> list[bytes]:
    """The JSON bodies of the requests that carry one batch, in the order to send them.

    Params come first, then tags, then the metric points in the order given; each body holds
    at most the counts the route takes and at most ``max_bytes`` (an entry larger than that on
    its own travels alone, for the server to judge). A batch that fits one request is one body,
    and an empty batch is one empty body (the server still checks that the run takes logging).
    """
    bodies = [_Body()]
    for name, limit, entry in _entries(metrics, params, tags):
        if not bodies[-1].takes(name, limit, entry, max_bytes):
            bodies.append(_Body())
        bodies[-1].add(name, entry)
    return [body.encode() for body in bodies]


def _entries(
    metrics: Sequence[Metric], params: Mapping[str, str], tags: Mapping[str, str]
) -> Iterator[tuple[str, int, bytes]]:
    for key, value in params.items():
        yield "params", MAX_BATCH_PARAMS, _encode(key) + b":" + _encode(value)
    for key, value in tags.items():
        yield "tags", MAX_BATCH_TAGS, _encode(key) + b":" + _encode(value)
    for metric in metrics:
        yield "metrics", MAX_BATCH_POINTS, _encode(metric.to_dict())


def check_batch(metrics: Sequence[Metric], params: Mapping[str, str], tags: Mapping[str, str]) -> None:
    """Refuse, before anything is sent, a batch the server would refuse part-way through.

    The store's own checks of each entry (keys, value lengths, numbers, 64-bit steps and
    timestamps): a batch sent as several requests must not fail on a bad entry after the
    requests before it have landed.
    """
    param_values(params)
    tag_values(tags)
    for metric in metrics:
        check_metric(metric)
