"""The Quayside error tree.

Every error a user can meet is one of these classes. Each declares a stable
``code`` (used in REST error bodies) and the ``http_status`` a server answers
with. Messages say what went wrong and, where possible, what to do about it;
foreign exceptions are translated at the boundary and never pasted raw.

A message is public: a server answers it to whoever called, so it names nothing
about the deployment (no database URL, host, file-system path or driver text).
What the operator needs to find the cause goes in ``detail``: the server logs it
under the request id, and ``str(error)`` (hence the CLI and a traceback on the
user's own machine) shows it after the message; no response body carries it.

    QuaysideError                    500 internal
    ├── UsageError                   400 bad_request
    │   ├── MalformedInputError      400 malformed_input
    │   ├── InvalidRequestError      400 invalid_request
    │   ├── FilterError              400 invalid_filter
    │   ├── InvalidNameError         400 invalid_name
    │   ├── RangeNotSatisfiableError 416 range_not_satisfiable
    │   └── InvalidHostError         400 invalid_host
    ├── AuthenticationError          401 unauthenticated
    ├── PermissionDeniedError        403 permission_denied
    ├── NotFoundError                404 not_found
    ├── AlreadyExistsError           409 already_exists
    ├── InvalidStateError            409 invalid_state
    ├── PolicyError                  409 policy_not_met
    ├── PayloadTooLargeError         413 payload_too_large
    ├── UnsupportedMediaTypeError    415 unsupported_media_type
    ├── SignatureError               422 signature_mismatch
    ├── PackageError                 422 invalid_package
    │   ├── PackageIntegrityError    422 integrity_failure
    │   └── UntrustedPackageError    403 untrusted_package
    ├── ConversionError              422 conversion_failed
    │   └── ParityError              422 parity_failed
    ├── BuildCheckError              422 build_check_failed
    ├── MissingExtraError            500 missing_extra
    └── UnavailableError             503 unavailable
"""

from __future__ import annotations

from typing import ClassVar


class QuaysideError(Exception):
    """Root of every error Quayside raises on purpose."""

    code: ClassVar[str] = "internal"
    http_status: ClassVar[int] = 500

    def __init__(self, message: str, *, detail: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.detail = detail

    def __str__(self) -> str:
        return f"{self.message} ({self.detail})" if self.detail else self.message

    def to_dict(self) -> dict[str, dict[str, str]]:
        """The body a REST handler answers with."""
        return {"error": {"code": self.code, "message": self.message}}


class UsageError(QuaysideError):
    """The caller asked for something that makes no sense as asked."""

    code = "bad_request"
    http_status = 400


class MalformedInputError(UsageError):
    """The input could not be parsed (broken JSON, CSV, YAML)."""

    code = "malformed_input"


class InvalidRequestError(UsageError):
    """The request does not fit the endpoint's declared schema; the message names the field.

    A missing or unknown field, a value of the wrong type or out of range: what FastAPI
    reports as a ``RequestValidationError``, answered the same way by the Quayside server
    and the model server. The status is 400, not FastAPI's default 422, because
    - every protocol Quayside speaks answers 400 to a bad request: Open Inference Protocol
      servers (KServe's ``InvalidInput``, Triton), MLflow's scoring server and its tracking
      API (``INVALID_PARAMETER_VALUE``, which the MLflow adapter keeps answering);
    - in this tree 400 is a request the caller got wrong (:class:`UsageError`: a version
      ``0`` as much as a version ``zero``, a string metric as much as a boolean one), and
      422 a well-formed request whose content the model or package cannot take
      (:class:`SignatureError`, :class:`PackageError`, :class:`ConversionError`);
    - the model server already answered 400 to a body that is not a request of its protocol.
    """

    code = "invalid_request"


class FilterError(UsageError):
    """A run-search filter or order-by could not be parsed; the message names the column."""

    code = "invalid_filter"


class InvalidNameError(UsageError):
    """A name breaks the one rule for names (quayside.names); the message says which name and why."""

    code = "invalid_name"


class InvalidHostError(UsageError):
    """The request's Host header names a host the server does not answer to (DNS rebinding, quayside.hosts)."""

    code = "invalid_host"


class RangeNotSatisfiableError(UsageError):
    """A ranged read asks for bytes past the end of a stored artifact; the message gives its size."""

    code = "range_not_satisfiable"
    http_status = 416


class AuthenticationError(QuaysideError):
    """No credentials, or credentials that are wrong, expired or revoked; the server answers 401."""

    code = "unauthenticated"
    http_status = 401


class PermissionDeniedError(QuaysideError):
    """The caller is known but its permissions do not allow this; the server answers 403."""

    code = "permission_denied"
    http_status = 403


class NotFoundError(QuaysideError):
    """The named thing does not exist."""

    code = "not_found"
    http_status = 404


class AlreadyExistsError(QuaysideError):
    """Creating the thing would overwrite one that exists."""

    code = "already_exists"
    http_status = 409


class InvalidStateError(QuaysideError):
    """The thing exists but cannot do that in its current state."""

    code = "invalid_state"
    http_status = 409


class PolicyError(QuaysideError):
    """The model's promotion policy refuses the move: no qualifying load test for a protected stage or alias.

    The message says what is missing and the command that produces it; nothing has changed.
    """

    code = "policy_not_met"
    http_status = 409


class PayloadTooLargeError(QuaysideError):
    """The request body is over the configured limit."""

    code = "payload_too_large"
    http_status = 413


class UnsupportedMediaTypeError(QuaysideError):
    """The request body comes in a content type the endpoint does not read."""

    code = "unsupported_media_type"
    http_status = 415


class SignatureError(QuaysideError):
    """The data does not match the model's signature."""

    code = "signature_mismatch"
    http_status = 422


class PackageError(QuaysideError):
    """The model package is malformed or cannot be loaded."""

    code = "invalid_package"
    http_status = 422


class PackageIntegrityError(PackageError):
    """A package file is missing, altered, or points outside the package."""

    code = "integrity_failure"


class UntrustedPackageError(PackageError):
    """Loading would execute code from the package and the caller did not opt in."""

    code = "untrusted_package"
    http_status = 403


class ConversionError(QuaysideError):
    """The model could not be converted to ONNX."""

    code = "conversion_failed"
    http_status = 422


class ParityError(ConversionError):
    """The ONNX model's outputs differ from the native model's beyond tolerance."""

    code = "parity_failed"


class BuildCheckError(QuaysideError):
    """A built image failed its checks: its smoke test (it did not start, or answered wrongly) or its budget."""

    code = "build_check_failed"
    http_status = 422


class MissingExtraError(QuaysideError):
    """An optional dependency is needed and not installed."""

    code = "missing_extra"
    http_status = 500

    def __init__(self, extra: str, what: str | None = None, *, cause: ImportError | None = None) -> None:
        needed = f" for {what}" if what else ""
        failed = f" ({type(cause).__name__}: {cause})" if cause is not None else ""
        super().__init__(f"the '{extra}' extra is needed{needed}{failed}: pip install 'quayside[{extra}]'")
        self.extra = extra


class UnavailableError(QuaysideError):
    """A database or tracking server Quayside depends on cannot be reached right now."""

    code = "unavailable"
    http_status = 503
    retry_after_s: ClassVar[int] = 1
    """Seconds a client should wait before retrying (a server answers it as ``Retry-After``)."""
