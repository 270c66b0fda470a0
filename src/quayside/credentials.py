"""API tokens for ``quayside server``s: ``QUAYSIDE_TOKEN``, else the one ``quayside login URL`` saved.

Saved tokens live in ``$QUAYSIDE_HOME/credentials.json``, one per server URL, in a file
only its owner can read or write (mode 0600, created with that mode, never widened). A
write goes to a temporary file of the same mode and is renamed into place, so a crash
never leaves half a file. Nothing here prints or logs a token.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import urlsplit

from quayside.config import Settings
from quayside.errors import UsageError

FILE_NAME = "credentials.json"
_MODE = 0o600


def credentials_path(home: Path) -> Path:
    return Path(home) / FILE_NAME


def server_key(url: str) -> str:
    """The form a server URL is saved under: scheme and host lower-case, no trailing slash."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UsageError(f"'{url}' is not a server URL; expected http(s)://host:port")
    path = parts.path.rstrip("/")
    return f"{parts.scheme.lower()}://{parts.netloc.lower()}{path}"


def _read(path: Path) -> dict[str, str]:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return {}
    try:
        saved = json.loads(text)
    except ValueError:
        raise UsageError(f"{path} is not valid JSON; remove it and run `quayside login` again") from None
    servers = saved.get("servers") if isinstance(saved, dict) else None
    if not isinstance(servers, dict):
        raise UsageError(f"{path} holds no 'servers' table; remove it and run `quayside login` again")
    return {str(url): str(entry["token"]) for url, entry in servers.items() if isinstance(entry, dict)}


def _write(path: Path, tokens: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"servers": {url: {"token": token} for url, token in sorted(tokens.items())}}, indent=2)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    # Created 0600 from the start: the token is never readable by others, not even for an instant.
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, _MODE)
    try:
        os.fchmod(fd, _MODE)  # an existing leftover temporary file keeps its mode otherwise
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(body + "\n")
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    os.replace(temporary, path)


def saved_token(home: Path, url: str) -> str | None:
    """The token ``quayside login`` saved for the server at ``url``, if any."""
    return _read(credentials_path(home)).get(server_key(url))


def save_token(home: Path, url: str, token: str) -> Path:
    """Save ``token`` for the server at ``url`` (replacing an older one); returns the file."""
    path = credentials_path(home)
    tokens = _read(path)
    tokens[server_key(url)] = token
    _write(path, tokens)
    return path


def remove_token(home: Path, url: str) -> bool:
    """Forget the token saved for ``url``; ``False`` when there was none."""
    path = credentials_path(home)
    tokens = _read(path)
    if tokens.pop(server_key(url), None) is None:
        return False
    _write(path, tokens)
    return True


def token_for(settings: Settings, url: str) -> str | None:
    """The token to send to the server at ``url``: ``QUAYSIDE_TOKEN``, else the saved one, else none."""
    if settings.token is not None:
        return settings.token.get_secret_value()
    return saved_token(settings.home, url)
