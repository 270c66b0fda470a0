"""What the numbers were measured on: CPU, memory, OS, tool versions, commit and date."""

from __future__ import annotations

import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from serving_bench.paths import REPO_DIR
from serving_bench.wrk import wrk_version


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _memory_gib() -> str:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return f"{int(line.split()[1]) / 2**20:.1f} GiB"
    return "unknown"


def _os_name() -> str:
    release = Path("/etc/os-release")
    if release.exists():
        for line in release.read_text().splitlines():
            if line.startswith("PRETTY_NAME="):
                return line.split("=", 1)[1].strip('"')
    return platform.system()


def _git_revision() -> str:
    completed = subprocess.run(
        ["git", "describe", "--always", "--dirty"], cwd=REPO_DIR, capture_output=True, text=True, check=False
    )
    return completed.stdout.strip() or "unknown"


def machine_info() -> dict[str, str]:
    """A flat description of this machine and run, for the report's header."""
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": f"{_cpu_model()}, {os.cpu_count()} logical CPUs",
        "memory": _memory_gib(),
        "os": f"{_os_name()}, Linux {platform.release()}",
        "python": platform.python_version(),
        "wrk": wrk_version(),
        "commit": _git_revision(),
        "load_average": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
