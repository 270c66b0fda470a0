"""``/health`` (liveness) and ``/health/ready`` (readiness): two questions, two routes.

Liveness asks "is this process alive?" and must answer whatever the database is
doing, so it runs on the event loop and touches neither the database nor the thread
pool (which a database under contention can fill). Readiness asks "can this server
serve requests now?": it checks the database and the artifact store (the bucket, or
the local directory), each on a thread of its own and within a short timeout.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from starlette.applications import Starlette

from quayside import __version__
from quayside.artifacts import open_artifact_store
from quayside.errors import QuaysideError, UnavailableError
from quayside.server.deps import app_state

READY_TIMEOUT_S = 2.0
ARTIFACT_CHECK_TTL_S = 2.0
"""How long the artifact store's verdict is reused: a storm of probes costs the bucket one request
per this many seconds, and an outage shows within it."""

router = APIRouter(tags=["server"])


@dataclass
class _Check:
    """One dependency's check: run on a thread of its own, one at a time, its verdict kept ``ttl_s``."""

    what: str
    """The dependency, as the 503 names it ("the tracking database", "the artifact store")."""
    run: Callable[[], None]
    ttl_s: float = 0.0
    # One check at a time: a hung one holds the token, so probes cannot pile up threads.
    limiter: anyio.CapacityLimiter = field(default_factory=lambda: anyio.CapacityLimiter(1))
    lock: anyio.Lock = field(default_factory=anyio.Lock)
    verdict: tuple[float, _Problem | None] | None = None
    """(when it was reached, the problem or None), reused until ``ttl_s`` has passed."""

    async def problem(self) -> _Problem | None:
        """What is wrong with the dependency now, or None when it answered."""
        try:
            with anyio.fail_after(READY_TIMEOUT_S):
                async with self.lock:  # concurrent probes share the check in progress
                    if self.verdict is None or time.monotonic() - self.verdict[0] >= self.ttl_s:
                        self.verdict = (time.monotonic(), await self._run())
                    return self.verdict[1]
        except TimeoutError:
            problem = _Problem(f"{self.what} did not answer within {READY_TIMEOUT_S:g} s")
            self.verdict = (time.monotonic(), problem)
            return problem

    async def _run(self) -> _Problem | None:
        try:
            await anyio.to_thread.run_sync(self.run, limiter=self.limiter, abandon_on_cancel=True)
        except QuaysideError as e:  # UsageError too: credentials revoked or a bucket removed since start
            message = e.message.removesuffix(_RETRY)
            if self.what not in message:
                message = f"{self.what}: {message}"
            return _Problem(message, e.detail)
        return None


@dataclass(frozen=True)
class _Problem:
    message: str
    """For the answer: names the dependency, never a host, a URL or a path."""
    detail: str | None = None
    """For the log (the error's ``detail``)."""


_RETRY = "; retry later"


async def _checks(app: Starlette) -> list[_Check]:
    """The app's readiness checks, made on its first probe."""
    checks = getattr(app.state, "readiness_checks", None)
    if checks is not None:
        return checks
    state = app_state(app)
    # Opening an S3 store makes its client, a second or so of boto3's: once, and outside any check's
    # timeout; on a limiter of its own, as the checks, so that a full request pool cannot hold it up.
    store = await anyio.to_thread.run_sync(
        open_artifact_store, state.settings.artifact_location, limiter=anyio.CapacityLimiter(1)
    )
    checks = getattr(app.state, "readiness_checks", None)  # another probe may have made them meanwhile
    if checks is None:
        sessions = state.tracking.sessions
        checks = [
            _Check(f"the {sessions.what} database", sessions.ping),
            _Check("the artifact store", store.check, ttl_s=ARTIFACT_CHECK_TTL_S),
        ]
        app.state.readiness_checks = checks
    return checks


@router.get("/health")
async def health() -> dict[str, str | int]:
    """Liveness: the server process is up and its event loop answers.

    Never touches the database or the request thread pool, so it answers 200 while the
    database is down or locked and every worker thread waits on it. A probe that restarts
    the server when it fails (Kubernetes' ``livenessProbe``) belongs here: restarting
    cures a hung process, not a busy database. ``pid`` names the process that answered
    (one of ``quayside server --workers N``).
    """
    return {"status": "ok", "version": __version__, "pid": os.getpid()}


@router.get(
    "/health/ready",
    responses={503: {"description": "The database or the artifact store did not answer in time, or failed."}},
)
async def ready(request: Request) -> dict[str, str]:
    """Readiness: the server can reach its database and its artifact store now.

    The database answers a trivial query; the artifact store proves itself usable
    (``ArtifactStore.check``: the bucket answers, or the directory takes a write), its
    verdict reused for ``ARTIFACT_CHECK_TTL_S``. Each runs on a thread of its own, not the
    request pool (which contention may have filled), and gets ``READY_TIMEOUT_S``;
    otherwise the answer is 503 ``unavailable`` with ``Retry-After``, naming which failed.
    A probe that only routes traffic away (``readinessProbe``, a load balancer's health
    check) belongs here.
    """
    checks = await _checks(request.app)
    problems: list[_Problem | None] = [None] * len(checks)

    async def check(index: int) -> None:
        problems[index] = await checks[index].problem()

    async with anyio.create_task_group() as group:
        for index in range(len(checks)):
            group.start_soon(check, index)
    failed = [problem for problem in problems if problem is not None]
    if failed:
        details = [problem.detail for problem in failed if problem.detail]
        raise UnavailableError(
            f"not ready: {'; '.join(problem.message for problem in failed)}{_RETRY}",
            detail="; ".join(details) or None,
        )
    return {"status": "ready", "version": __version__}
