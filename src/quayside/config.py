"""Settings, read once from ``QUAYSIDE_*`` environment variables at the edge.

The CLI and ``create_app`` build one :class:`Settings` and pass it down;
nothing deeper in the code reads the environment.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import Literal, TypeVar
from urllib.parse import unquote, urlsplit

from pydantic import Field, SecretStr, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from quayside.errors import UsageError

_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://")


def _default_home() -> Path:
    return Path.home() / ".quayside"


class Settings(BaseSettings):
    """Quayside configuration; every field is ``QUAYSIDE_<FIELD>`` in the environment."""

    model_config = SettingsConfigDict(env_prefix="QUAYSIDE_", frozen=True)

    home: Path = Field(default_factory=_default_home)
    """Where local state lives: the SQLite database and the artifact root. Default ``~/.quayside``."""

    parity_rtol: float = 1e-4
    """Relative tolerance an ONNX conversion must meet against the native model."""

    parity_atol: float = 1e-5
    """Absolute tolerance an ONNX conversion must meet against the native model."""

    parity_samples: int = 1000
    """Rows sampled within the input example's ranges for the parity check."""

    onnx_opset: int | None = None
    """ONNX opset to convert to; ``None`` lets each converter pick its newest supported."""

    debug: bool = False
    """Show full tracebacks in the CLI instead of one ``error:`` line."""

    db_url: str | None = None
    """SQLAlchemy URL of the tracking database, e.g. ``postgresql+psycopg://user@host/db``.
    Default: SQLite at ``$QUAYSIDE_HOME/quayside.db``."""

    db_lock_timeout_s: float = Field(default=20.0, gt=0)
    """Seconds a SQLite write waits for another writer's lock before it fails as unavailable (a
    server answers 503 with ``Retry-After``). Kept under ``http_timeout_s`` so that a client hears
    the 503 instead of timing out."""

    db_connection_timeout_s: float = Field(default=5.0, gt=0)
    """Seconds a request waits for a database connection (a free one from the pool, or a new one
    from PostgreSQL) before it fails as unavailable, instead of queueing behind the others."""

    artifact_root: str | None = None
    """Where every artifact lives (run files, logged models, registry packages, load-test reports):
    a directory, ``file:///absolute/path``, or ``s3://bucket[/prefix]`` (endpoint from
    ``QUAYSIDE_S3_ENDPOINT_URL`` or ``AWS_ENDPOINT_URL``, credentials from boto3's usual chain).
    Default: ``$QUAYSIDE_HOME/artifacts``. A root Quayside cannot use is refused at start."""

    tracking_uri: str | None = None
    """``http(s)://host:port`` of a ``quayside server`` to log to; unset means the local store."""

    registry_uri: str | None = None
    """``http(s)://host:port`` of a ``quayside server`` holding the model registry; unset means
    ``tracking_uri`` (one server holds both), else the local store."""

    actor: str | None = None
    """Who registry changes are recorded as in the audit log; unset means the OS user."""

    experiment: str = "default"
    """Experiment a run joins when ``start_run`` names none."""

    run_id: str | None = None
    """Run that ``start_run`` resumes and logging lands in; ``quayside run`` sets it for its subprocess."""

    max_artifact_bytes: int = Field(default=1 << 30, gt=0)
    """Largest artifact file the server accepts in one upload (bytes), and the most a package
    archive uploaded to the registry may hold, archived or unpacked. Default 1 GiB."""

    max_request_bytes: int = Field(default=1 << 20, gt=0)
    """Largest request body ``quayside server`` reads on a JSON API route (bytes); larger bodies
    are answered 413 as soon as they pass it, before they are parsed. Uploads (artifacts,
    packages) stream to disk under ``max_artifact_bytes`` instead. Default 1 MiB."""

    max_archive_entries: int = Field(default=10_000, gt=0)
    """Most entries (files and directories) a package archive uploaded to the registry may hold;
    counted before anything is unpacked. Default 10,000."""

    http_timeout_s: float = Field(default=30.0, gt=0)
    """Seconds the tracking client waits for a server's answer."""

    server_host: str = "127.0.0.1"
    """Interface ``quayside server`` listens on; loopback only unless changed."""

    server_port: int = Field(default=5000, ge=1, le=65535)
    """Port ``quayside server`` listens on."""

    allowed_hosts: str | None = None
    """Host names (comma-separated, any port; ``*`` for any) ``quayside server`` answers to; a
    request with another ``Host`` gets 400 (DNS rebinding). Unset: the loopback names when bound to
    loopback; the bound address and the loopback names when bound to another; any when bound to
    every interface (0.0.0.0, ::)."""

    auth: bool = False
    """Require credentials on ``quayside server`` (API tokens, passwords, UI sessions) and check
    every request against the route-permission table. Off means one local user who may do
    everything, which the server allows on a loopback address only."""

    insecure_no_auth: bool = False
    """Let ``quayside server`` listen on a non-loopback address without authentication: anyone who
    can reach the port may then read and change everything. A warning is printed on every start."""

    auth_default_permission: Literal["read", "none"] = "read"
    """With auth on, what a signed-in user may do to an experiment or model nobody granted them
    anything on: ``read`` (see it) or ``none`` (not even list it). Grants and admins go above it."""

    token: SecretStr | None = None
    """API token the Python clients and the CLI send to a ``quayside server`` (``Authorization:
    Bearer``); unset means the token ``quayside login URL`` saved for that server, if any. Never
    logged or printed."""

    session_secret: SecretStr | None = None
    """Key that signs the web UI's session cookies and derives their CSRF tokens. Set the same
    value on every replica; unset means a random key generated once and kept in
    ``$QUAYSIDE_HOME/session_secret`` (mode 0600), shared by restarts and by servers sharing
    that home."""

    session_max_age_s: int = Field(default=12 * 3600, gt=0)
    """Seconds a web UI login lasts before the user must log in again. Default 12 hours."""

    @property
    def database_url(self) -> str:
        """The tracking database's URL: ``db_url`` if set, else SQLite under ``home``."""
        return self.db_url or f"sqlite:///{self.home / 'quayside.db'}"

    @property
    def artifact_location(self) -> str:
        """The artifact root as text (what :func:`quayside.artifacts.open_artifact_store` takes):
        ``artifact_root`` if set, else ``home/artifacts``."""
        return self.artifact_root or str(self.home / "artifacts")

    @property
    def artifact_root_is_local(self) -> bool:
        """Whether the artifact root is a directory on this machine (a path or ``file://``)."""
        location = self.artifact_location
        return not _URI_SCHEME.match(location) or location.lower().startswith("file:")

    @property
    def artifact_dir(self) -> Path:
        """A local directory for writes in progress and caches: the artifact root itself when it is
        local (so that a finished write is a rename on one file system), else ``home/work``."""
        if self.artifact_root_is_local:
            location = self.artifact_location
            if location.lower().startswith("file:"):
                location = unquote(urlsplit(location).path)
            return Path(location).expanduser()
        return self.home / "work"


def load_settings() -> Settings:
    """Read the settings from the environment, naming the variable when one is invalid."""
    try:
        return Settings()
    except ValidationError as e:
        problems = "; ".join(
            f"QUAYSIDE_{'_'.join(str(p) for p in error['loc']).upper()}: {error['msg']}"
            for error in e.errors()
        )
        raise UsageError(f"invalid setting: {problems}") from None


Backend = TypeVar("Backend")


def backend_for(
    uri: str | None,
    settings: Settings,
    *,
    what: str,
    rest: Callable[[str], Backend],
    local: Callable[[Settings], Backend],
) -> Backend:
    """The backend a tracking or registry URI names, the one rule both components follow.

    ``http(s)://host:port`` is a ``quayside server``, reached through ``rest(uri)``; another
    URL is a database, used by the local store ``local`` builds from ``settings`` with that
    ``db_url``; no URI is the local store of ``settings`` as they are. ``what`` names the URI
    in the message for one that is neither ("tracking", "registry").
    """
    if uri and uri.startswith(("http://", "https://")):
        return rest(uri)
    if uri:
        if "://" not in uri:
            raise UsageError(
                f"{what} URI '{uri}' is neither http(s)://host:port nor a database URL (sqlite:///path)"
            )
        settings = settings.model_copy(update={"db_url": uri})
    return local(settings)
