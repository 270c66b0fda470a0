"""The HTTP side of every REST backend: requests to a ``quayside server``, its errors as Quayside's.

The server answers errors as ``{"error": {"code", "message"}}``; the client raises
the :class:`~quayside.errors.QuaysideError` subclass with that code, so code using
a REST backend sees the same exceptions as code using the local store.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx

from quayside.errors import QuaysideError, UnavailableError


def _error_classes(root: type[QuaysideError] = QuaysideError) -> dict[str, type[QuaysideError]]:
    classes = {root.code: root}
    for subclass in root.__subclasses__():
        classes.update(_error_classes(subclass))
    return classes


def error_from_body(status: int, body: Any, server: str = "the server") -> QuaysideError:
    """The QuaysideError a server's error body describes (by its ``code``)."""
    detail = body.get("error") if isinstance(body, dict) else None
    if not isinstance(detail, dict):
        return QuaysideError(f"{server} answered {status} without an error body")
    cls = _error_classes().get(str(detail.get("code")), QuaysideError)
    error = cls.__new__(cls)
    QuaysideError.__init__(error, str(detail.get("message", "")))
    return error


def auth_headers(token: str | None) -> dict[str, str]:
    """The headers that carry an API token (``Authorization: Bearer``); none without a token."""
    return {"Authorization": f"Bearer {token}"} if token else {}


class JsonApi:
    """One REST API of a ``quayside server`` (its base URL plus a component's prefix)."""

    def __init__(
        self, base_url: str, prefix: str, *, what: str, timeout_s: float = 30.0, token: str | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.what = what
        self.http = httpx.Client(
            base_url=self.base_url + prefix, timeout=timeout_s, headers=auth_headers(token)
        )

    def close(self) -> None:
        self.http.close()

    def _unreachable(self, error: httpx.TransportError, during: str = "") -> UnavailableError:
        return UnavailableError(
            f"cannot reach the {self.what} at {self.base_url}{during} ({type(error).__name__}: {error}); "
            "is `quayside server` running there?"
        )

    def raise_for_error(self, response: httpx.Response) -> None:
        """Raise the Quayside error an error response describes; do nothing for a success."""
        if response.status_code < 400:
            return
        raise error_from_body(response.status_code, json_or_none(response), f"the {self.what}")

    def request(self, method: str, url: str, **kwargs: Any) -> httpx.Response:
        try:
            response = self.http.request(method, url, **kwargs)
        except httpx.TransportError as e:
            raise self._unreachable(e) from None
        self.raise_for_error(response)
        return response

    def json(self, method: str, url: str, **kwargs: Any) -> Any:
        return self.request(method, url, **kwargs).json()

    @contextmanager
    def stream(self, method: str, url: str, **kwargs: Any) -> Iterator[httpx.Response]:
        """A streamed successful response; an error response or a lost connection raises."""
        try:
            with self.http.stream(method, url, **kwargs) as response:
                if response.status_code >= 400:
                    response.read()
                    self.raise_for_error(response)
                yield response
        except httpx.TransportError as e:
            raise self._unreachable(e, " during a transfer") from None


def json_or_none(response: httpx.Response) -> Any:
    """The response's JSON body, or None when it has none (a proxy's HTML error page, an empty body)."""
    try:
        return response.json()
    except ValueError:
        return None
