"""Request ids: the caller's ``X-Request-ID`` when it is a sane one, else a new one.

Shared by the model server and the Quayside server, which echo the id in a
response header and name it in log lines and 5xx bodies.
"""

from __future__ import annotations

import itertools
import os

REQUEST_ID_HEADER = b"x-request-id"
MAX_REQUEST_ID = 128

# A random per-process prefix and a counter: unique across workers and replicas, and an order of
# magnitude cheaper than a uuid4 on the serving hot path.
_ID_PREFIX = os.urandom(6).hex()
_next_id = itertools.count(1).__next__


def new_request_id() -> str:
    """A fresh id, unique across processes."""
    return f"{_ID_PREFIX}-{_next_id():x}"


def incoming_request_id(headers: list[tuple[bytes, bytes]]) -> str | None:
    """The caller's id from raw ASGI headers, if it is printable ASCII without spaces and bounded."""
    for name, value in headers:
        if name == REQUEST_ID_HEADER:
            text = value.decode("latin-1")
            # It is echoed in headers and logs.
            if 0 < len(text) <= MAX_REQUEST_ID and text.isprintable() and text.isascii() and " " not in text:
                return text
            return None
    return None
