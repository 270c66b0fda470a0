"""The registry as a model image sees it: a ``quayside server`` over HTTP, with no registry code.

An image built from a moving URI (``models:/churn@champion``) carries the version the URI named
when it was built, and serves it from its first second, registry or not. Given the registry's
address (``QUAYSIDE_REGISTRY_URI``) it also follows the URI: this module answers which version
the URI names now (:meth:`HttpRegistry.current_version`, the follower's probe) and fetches a
version's package into a local cache keyed by its digest (:meth:`HttpRegistry.resolve`, the
loader's resolver), checking that what arrived is the package the registry recorded. It uses the
standard library's HTTP client, so the slim image needs no more wheels, and the packager's tar
extraction, which refuses links, escapes and oversized archives.
"""

from __future__ import annotations

import json
import shutil
import tempfile
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import quote

from quayside.errors import NotFoundError, PackageIntegrityError, QuaysideError, UnavailableError, UsageError
from quayside.packager.archive import extract_tar
from quayside.packager.manifest import MANIFEST_NAME, read_manifest

API_PREFIX = "/api/registry"
CHUNK = 1 << 20
KEEP_VERSIONS = 2
"""Downloaded versions kept in the cache: the one just fetched and the one before (a container's
``/tmp`` is small, and a loaded model no longer reads its files)."""


@dataclass(frozen=True)
class MovingUri:
    """A ``models:/`` URI as the registry's REST API asks for it."""

    name: str
    path: str
    """The API path (under the model) of the version the URI names."""


def parse_moving_uri(uri: str) -> MovingUri | None:
    """``models:/NAME@ALIAS``, ``models:/NAME/latest``, ``models:/NAME/STAGE`` or ``models:/NAME/N``;
    None for anything else (a path, ``runs:/``), which this reader does not resolve."""
    if not uri.startswith("models:/"):
        return None
    rest = uri.removeprefix("models:/")
    if "@" in rest:
        name, _, alias = rest.partition("@")
        return MovingUri(name, f"/aliases/{quote(alias, safe='')}")
    name, _, reference = rest.partition("/")
    if not name or not reference:
        raise UsageError(
            f"'{uri}': say which version: models:/{name}/<version>, /<stage>, /latest or @<alias>"
        )
    if reference.isascii() and reference.isdigit():
        return MovingUri(name, f"/versions/{int(reference)}")
    if reference == "latest":
        return MovingUri(name, "/latest")
    return MovingUri(name, f"/latest?stage={quote(reference.lower(), safe='')}")


def is_fixed(uri: str) -> bool:
    """Whether ``uri`` names one version for good (``models:/NAME/3``)."""
    parsed = parse_moving_uri(uri)
    return parsed is not None and parsed.path.startswith("/versions/")


class HttpRegistry:
    """Reads versions and downloads packages from a ``quayside server`` registry."""

    def __init__(
        self, base_url: str, *, cache_dir: Path, token: str | None = None, timeout_s: float = 30.0
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise UsageError(f"the registry URI must be http(s)://host:port, not '{base_url}'")
        self.base_url = base_url.rstrip("/")
        self.cache_dir = Path(cache_dir)
        self.token = token
        self.timeout_s = timeout_s

    def current_version(self, uri: str) -> str | None:
        """The version a moving ``uri`` names now; None for one that cannot move. Blocking."""
        parsed = parse_moving_uri(uri)
        if parsed is None or is_fixed(uri):
            return None
        return str(self._version(parsed)["version"])

    def resolve(self, uri: str) -> tuple[Path, str | None, str | None]:
        """The local package directory of the version ``uri`` names now, and its name and version:
        downloaded once per digest, and checked against the digest the registry recorded."""
        parsed = parse_moving_uri(uri)
        if parsed is None:
            raise UsageError(f"'{uri}' is not a models:/ URI; this server resolves only those")
        version = self._version(parsed)
        digest = str(version["digest"])
        target = self.cache_dir / digest
        if not (target / MANIFEST_NAME).is_file():
            self._download(parsed.name, int(version["version"]), digest, target)
            self._prune()
        return target, parsed.name, str(version["version"])

    def _prune(self) -> None:
        """Remove all but the :data:`KEEP_VERSIONS` newest downloads."""
        downloads = [entry for entry in self.cache_dir.iterdir() if (entry / MANIFEST_NAME).is_file()]
        downloads.sort(key=lambda entry: entry.stat().st_mtime, reverse=True)
        for old in downloads[KEEP_VERSIONS:]:
            shutil.rmtree(old, ignore_errors=True)

    def _version(self, parsed: MovingUri) -> dict[str, Any]:
        with self._open(f"/models/{quote(parsed.name, safe='')}{parsed.path}") as response:
            return json.loads(response.read())

    def _download(self, name: str, version: int, digest: str, target: Path) -> None:
        self.cache_dir.mkdir(parents=True, exist_ok=True)
        staging = Path(tempfile.mkdtemp(prefix=".download-", dir=self.cache_dir))
        try:
            with tempfile.TemporaryFile(dir=self.cache_dir) as spool:
                with self._open(f"/models/{quote(name, safe='')}/versions/{version}/package") as response:
                    shutil.copyfileobj(response, spool, CHUNK)
                spool.seek(0)
                package = extract_tar(spool, staging / "package")
            found = read_manifest(package).digest()
            if found != digest:
                raise PackageIntegrityError(
                    f"the package of version {version} of '{name}' downloaded from {self.base_url} has "
                    f"digest {found[:12]}, not the {digest[:12]} the registry recorded"
                )
            try:
                package.rename(target)
            except OSError:
                if not (target / MANIFEST_NAME).is_file():  # not another worker's finished copy
                    raise
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _open(self, path: str) -> Any:
        request = urllib.request.Request(f"{self.base_url}{API_PREFIX}{path}")
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            return urllib.request.urlopen(request, timeout=self.timeout_s)  # http(s) only, checked above
        except urllib.error.HTTPError as e:
            raise _error(e, self.base_url) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UnavailableError(f"cannot reach the registry at {self.base_url} ({reason})") from None


def _error(response: urllib.error.HTTPError, base_url: str) -> QuaysideError:
    try:
        detail = json.loads(response.read()).get("error", {})
        message = str(detail.get("message", ""))
    except (ValueError, AttributeError):
        message = ""
    message = message or f"the registry at {base_url} answered {response.code}"
    if response.code == 404:
        return NotFoundError(message)
    if response.code >= 500:
        return UnavailableError(message)
    return QuaysideError(message)
