"""Where the benchmarks keep what they make: all under loadtests/, the generated parts gitignored."""

from __future__ import annotations

from pathlib import Path

LOADTESTS_DIR = Path(__file__).resolve().parent.parent
REPO_DIR = LOADTESTS_DIR.parent
BASELINES_DIR = LOADTESTS_DIR / "baselines"
VENVS_DIR = LOADTESTS_DIR / ".venvs"
"""One venv per competitor, reused across runs (gitignored)."""
WORK_DIR = LOADTESTS_DIR / ".work"
"""Models, request bodies, Lua scripts and server logs of the latest run (gitignored)."""
RESULTS_MD = LOADTESTS_DIR / "RESULTS.md"


def relative(path: Path) -> str:
    """``path`` relative to the repository root when it is inside it, for reports."""
    try:
        return str(path.resolve().relative_to(REPO_DIR))
    except ValueError:
        return str(path)
