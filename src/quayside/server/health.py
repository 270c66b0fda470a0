"""``/health`` (liveness) and ``/health/ready`` (readiness): two questions, two routes.

Liveness asks "is this process alive?" and must answer whatever the database is
doing, so it runs on the event loop and touches neither the database nor the thread
pool (which a database under contention can fill). Readiness asks "can this server
serve requests now?" and checks the database, within a short timeout.
"""

from __future__ import annotations

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request

from quayside import __version__
from quayside.errors import UnavailableError
from quayside.server.deps import app_state

READY_TIMEOUT_S = 2.0

router = APIRouter(tags=["server"])


@router.get("/health")
async def health() -> dict[str, str]:
    """Liveness: the server process is up and its event loop answers.

    Never touches the database or the request thread pool, so it answers 200 while the
    database is down or locked and every worker thread waits on it. A probe that restarts
    the server when it fails (Kubernetes' ``livenessProbe``) belongs here: restarting
    cures a hung process, not a busy database.
    """
    return {"status": "ok", "version": __version__}


@router.get("/health/ready", responses={503: {"description": "The database did not answer in time."}})
async def ready(request: Request) -> dict[str, str]:
    """Readiness: the server can reach its database now (a trivial query answers).

    The check runs on a thread of its own, not the request pool (which contention may
    have filled), and gets ``READY_TIMEOUT_S``; otherwise the answer is 503 ``unavailable``
    with ``Retry-After``. A probe that only routes traffic away (``readinessProbe``, a load
    balancer's health check) belongs here.
    """
    state = request.app.state
    if getattr(state, "readiness_limiter", None) is None:
        # One check at a time: a hung one holds the token, so probes cannot pile up threads.
        state.readiness_limiter = anyio.CapacityLimiter(1)
    sessions = app_state(request.app).tracking.sessions
    try:
        with anyio.fail_after(READY_TIMEOUT_S):
            await anyio.to_thread.run_sync(
                sessions.ping, limiter=state.readiness_limiter, abandon_on_cancel=True
            )
    except TimeoutError:
        raise UnavailableError(
            f"the {sessions.what} database did not answer within {READY_TIMEOUT_S:g} s; retry later"
        ) from None
    return {"status": "ready", "version": __version__}
