"""How long this server process took to start: import, model load, warm-up, and all of it to ready.

The clock starts when the operating system started the process (``/proc/self/stat``),
not when Python got round to running Quayside's code: interpreter start-up, ``site``
and the import of the framework are part of a cold start (in an image, most of it),
and nothing in Python can time what ran before it. Where ``/proc`` is missing (not
Linux), the clock starts when this module was imported, so the import phase then
undercounts.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass


def _seconds_since_process_start() -> float | None:
    """The process's age, from its start time in clock ticks since boot (10 ms resolution)."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()  # the command name may hold spaces and ')'
        started_ticks = int(fields[19])  # field 22, starttime; fields[0] is field 3
        age = time.clock_gettime(time.CLOCK_BOOTTIME) - started_ticks / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, IndexError, AttributeError):  # no /proc, or no CLOCK_BOOTTIME
        return None
    return max(age, 0.0)


PROCESS_STARTED = time.monotonic() - (_seconds_since_process_start() or 0.0)
"""When this process started, on the :func:`time.monotonic` clock."""

PHASES = ("import", "load", "warmup")
"""The ``phase`` label values of ``quayside_startup_phase_seconds``, in the order they happen."""


@dataclass(frozen=True)
class StartupTimes:
    """Seconds each phase of this process's start took, and the whole of it to ready.

    The phases need not add up to the total: what runs between them (resolving a
    registry URI, building the app, starting the batcher) counts only in the total.
    """

    import_s: float
    """Process start to the server's app module imported (interpreter, framework, runtime libraries)."""
    load_s: float
    """Opening the package, verifying its digests and creating the runtime session."""
    warmup_s: float
    """The warm-up inferences on the input example (0 when the package has none)."""
    total_s: float
    """Process start to ready."""

    @classmethod
    def until_now(cls, *, imported_at: float, load_s: float, warmup_s: float) -> StartupTimes:
        """The times of a process that is ready now and imported its app at ``imported_at`` (monotonic)."""
        return cls(
            import_s=max(imported_at - PROCESS_STARTED, 0.0),
            load_s=load_s,
            warmup_s=warmup_s,
            total_s=time.monotonic() - PROCESS_STARTED,
        )

    def phases(self) -> dict[str, float]:
        return dict(zip(PHASES, (self.import_s, self.load_s, self.warmup_s), strict=True))

    def describe(self) -> str:
        """``1.42 s (import 0.61 s, load 0.55 s, warm-up 0.26 s)``, as the readiness line shows it."""
        return (
            f"{self.total_s:.2f} s (import {self.import_s:.2f} s, load {self.load_s:.2f} s, "
            f"warm-up {self.warmup_s:.2f} s)"
        )
