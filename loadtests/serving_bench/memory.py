"""Memory a server holds: the resident set of its whole process tree, read from /proc.

RSS (``VmRSS`` in /proc/<pid>/status, what ``ps`` and ``top`` show) counts every
page a process maps, so pages shared between processes (the Python interpreter,
NumPy's and ONNX Runtime's libraries) are counted once per process: summing RSS
over several servers is what their operator is billed for in a container
limit, but overstates what they take from the machine together. PSS (``Pss`` in
/proc/<pid>/smaps_rollup) splits each shared page between the processes mapping
it, so PSS sums to the machine's real use.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from serving_bench.processes import process_tree


def _kib_field(path: Path, field: str) -> int:
    """A ``Name:   1234 kB`` line's value in KiB; 0 when the process has gone or hides it."""
    try:
        text = path.read_text()
    except OSError:
        return 0
    for line in text.splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


def rss_bytes(root_pids: Iterable[int]) -> int:
    """Total RSS, in bytes, of the given processes and all their descendants."""
    return 1024 * sum(
        _kib_field(Path(f"/proc/{pid}/status"), "VmRSS") for root in root_pids for pid in process_tree(root)
    )


def pss_bytes(root_pids: Iterable[int]) -> int:
    """Total PSS, in bytes, of the given processes and all their descendants (shared pages split)."""
    return 1024 * sum(
        _kib_field(Path(f"/proc/{pid}/smaps_rollup"), "Pss")
        for root in root_pids
        for pid in process_tree(root)
    )
