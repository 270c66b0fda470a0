"""The image's wheels, resolved on the host for the image's platform and cached there.

``pip download --only-binary=:all: --platform ... --python-version 3.11`` resolves
the requirements for linux/amd64 CPython 3.11 whatever the host runs, so the image
build never reaches a package index (the engine may have no network at all) and
never compiles. Resolved sets are cached under ``$QUAYSIDE_HOME/wheelhouse/<key>``,
keyed by the requirements and the platform: rebuilding, or building a new
version of a model with the same requirements, downloads nothing.

Quayside itself goes in as a wheel written here from the installed package
(:func:`quayside_wheel`), without its dependencies: the image gets the serving
runtime the wheelhouse lists, not the CLI's database and HTTP libraries.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import zipfile
from collections.abc import Callable, Iterable
from pathlib import Path

from quayside.errors import UnavailableError
from quayside.packager.docker.context import IMAGE_PIP_PLATFORMS, IMAGE_PYTHON

CACHE_FORMAT = 1
COMPLETE_MARKER = ".complete"

QUAYSIDE_EXCLUDED = ("cli/", "server/", "loadtesting/", "packager/docker/", "packager/k8s/")
"""What nothing below the CLI imports (the import contracts say so): it stays on the host.

Everything else goes in, so a module serving imports lazily is never missing; the
packages tracking and the registry need (SQLAlchemy, ...) are not installed, and a
build step imports the server to prove it does not need them.
"""

Log = Callable[[str], None]


def wheelhouse_key(requirements: Iterable[str]) -> str:
    identity = {
        "format": CACHE_FORMAT,
        "requirements": sorted(requirements),
        "platforms": list(IMAGE_PIP_PLATFORMS),
        "python": IMAGE_PYTHON,
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()[:24]


def pip_download_command(requirements: Iterable[str], destination: Path) -> list[str]:
    platforms = [arg for platform in IMAGE_PIP_PLATFORMS for arg in ("--platform", platform)]
    abi = "cp" + IMAGE_PYTHON.replace(".", "")
    return [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--disable-pip-version-check",
        "--no-input",
        "--only-binary=:all:",
        *platforms,
        "--python-version",
        IMAGE_PYTHON,
        "--implementation",
        "cp",
        "--abi",
        abi,
        "--abi",
        "abi3",
        "--abi",
        "none",
        "--dest",
        str(destination),
        *requirements,
    ]


def resolve_wheelhouse(requirements: Iterable[str], cache_root: Path, *, log: Log) -> list[Path]:
    """The wheels of ``requirements`` and all they depend on, from the cache or downloaded once."""
    requirements = sorted(requirements)
    target = Path(cache_root) / wheelhouse_key(requirements)
    if (target / COMPLETE_MARKER).exists():
        log(f"wheelhouse: cached at {target}")
        return sorted(target.glob("*.whl"))
    log(f"wheelhouse: resolving {len(requirements)} requirements for linux/amd64, CPython {IMAGE_PYTHON}")
    staging = target.with_name(f".{target.name}.{os.getpid()}")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    try:
        _pip_download(requirements, staging)
        (staging / COMPLETE_MARKER).write_text("\n".join(requirements) + "\n", encoding="utf-8")
        shutil.rmtree(target, ignore_errors=True)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    wheels = sorted(target.glob("*.whl"))
    log(f"wheelhouse: {len(wheels)} wheels, {sum(w.stat().st_size for w in wheels) / 2**20:.1f} MiB, cached")
    return wheels


def _pip_download(requirements: list[str], destination: Path) -> None:
    result = subprocess.run(
        pip_download_command(requirements, destination), capture_output=True, text=True, check=False
    )
    if result.returncode == 0:
        return
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    reason = next((line for line in reversed(lines) if line.startswith("ERROR")), lines[-1] if lines else "")
    raise UnavailableError(
        "could not resolve the image's wheels for linux/amd64 CPython "
        f"{IMAGE_PYTHON} with pip: {reason.removeprefix('ERROR: ')} "
        "(every requirement needs a binary wheel for that platform, and PyPI must be reachable)"
    )


# --- Quayside itself ------------------------------------------------------------------


def quayside_wheel(package_dir: Path, version: str, destination: Path) -> Path:
    """A pure-Python wheel of the installed Quayside, with no dependencies declared.

    Written from the installed package rather than built with ``pip wheel``: it works
    for an editable install and a regular one alike, needs no build backend, and is
    byte-for-byte reproducible (sorted entries, fixed timestamps), so the image's
    dependency layer stays cached until Quayside's code changes.
    """
    files = _image_files(Path(package_dir))
    dist_info = f"quayside-{version}.dist-info"
    entries: list[tuple[str, bytes]] = [
        (f"quayside/{relative}", path.read_bytes()) for relative, path in files
    ]
    entries.append((f"{dist_info}/METADATA", _metadata(version).encode()))
    entries.append((f"{dist_info}/WHEEL", _wheel_file().encode()))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in entries)
    record += f"{dist_info}/RECORD,,\n"
    entries.append((f"{dist_info}/RECORD", record.encode()))
    destination.mkdir(parents=True, exist_ok=True)
    wheel = destination / f"quayside-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for name, data in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, data)
    return wheel


def _image_files(package_dir: Path) -> list[tuple[str, Path]]:
    chosen: list[tuple[str, Path]] = []
    for path in sorted(package_dir.rglob("*")):
        relative = path.relative_to(package_dir).as_posix()
        if not path.is_file() or "__pycache__" in relative or relative.endswith(".pyc"):
            continue
        if relative.startswith(QUAYSIDE_EXCLUDED):
            continue
        chosen.append((relative, path))
    return chosen


def _metadata(version: str) -> str:
    return (
        "Metadata-Version: 2.1\n"
        "Name: quayside\n"
        f"Version: {version}\n"
        "Summary: Quayside's model server, as installed in a Quayside image (dependencies in the image).\n"
    )


def _wheel_file() -> str:
    return "Wheel-Version: 1.0\nGenerator: quayside\nRoot-Is-Purelib: true\nTag: py3-none-any\n"


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"
