"""What a run records about where it ran: git commit and dirty flag, user, host, Python, packages, command."""

from __future__ import annotations

import getpass
import platform
import shlex
import socket
import subprocess
import sys
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path

KEY_PACKAGES = (
    "quayside",
    "numpy",
    "pandas",
    "scikit-learn",
    "xgboost",
    "lightgbm",
    "torch",
    "onnx",
    "onnxruntime",
)
GIT_TIMEOUT_S = 5

COMMIT_TAG = "quayside.git.commit"
DIRTY_TAG = "quayside.git.dirty"


def _git(directory: Path, *args: str) -> str | None:
    try:
        result = subprocess.run(
            ["git", *args], cwd=directory, capture_output=True, text=True, timeout=GIT_TIMEOUT_S, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None  # no git, or a directory git cannot use: the run simply records no commit
    return result.stdout.strip() if result.returncode == 0 else None


def git_state(directory: Path) -> dict[str, str]:
    """``quayside.git.commit`` and ``quayside.git.dirty`` for the repository holding ``directory``, if any."""
    commit = _git(directory, "rev-parse", "HEAD")
    if not commit:
        return {}
    status = _git(directory, "status", "--porcelain", "--untracked-files=no")
    return {COMMIT_TAG: commit, DIRTY_TAG: "true" if status else "false"}


def package_versions() -> dict[str, str]:
    versions = {}
    for name in KEY_PACKAGES:
        try:
            versions[f"quayside.package.{name}"] = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
    return versions


def source_directory(argv: Sequence[str]) -> Path:
    """The directory of the running script, or the working directory for ``-c``, REPLs and notebooks."""
    if argv and argv[0] not in ("", "-c", "-m") and Path(argv[0]).is_file():
        return Path(argv[0]).resolve().parent
    return Path.cwd()


def run_context(argv: Sequence[str] | None = None) -> dict[str, str]:
    """The tags every new run starts with."""
    argv = list(sys.argv if argv is None else argv)
    tags = {
        "quayside.user": getpass.getuser(),
        "quayside.host": socket.gethostname(),
        "quayside.python": platform.python_version(),
        "quayside.command": shlex.join([Path(sys.executable).name, *argv])
        if argv
        else Path(sys.executable).name,
    }
    tags.update(git_state(source_directory(argv)))
    tags.update(package_versions())
    return tags
