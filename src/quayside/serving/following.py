"""Following a registry alias: when the version a served URI names changes, serve the new one.

A model served from a moving URI (``models:/churn@champion``, a stage, ``latest``) is polled
every ``interval_s`` through the injected ``probe`` (the launcher's: serving imports no
registry). When the probe names another version, the server loads and warms it beside the one
answering, switches traffic at once, and drains the old one
(:meth:`~quayside.serving.model_server.ModelServer.reload`). A version that fails to load
leaves the old one serving; it is logged and counted, and tried again only after
:data:`RETRY_AFTER_S`, or at once when the alias moves on.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

from quayside.errors import QuaysideError
from quayside.serving.model_server import ModelServer

logger = logging.getLogger("quayside.serving")

VersionProbe = Callable[[str], "str | None"]
"""A model URI to the version it names now (None: it names no moving version). Blocking."""

RETRY_AFTER_S = 60.0
"""How long a version that failed to load waits before it is tried again."""


class AliasFollower:
    """Polls the version each served URI names and reloads the models whose version moved."""

    def __init__(self, server: ModelServer, probe: VersionProbe, interval_s: float) -> None:
        self.server = server
        self.probe = probe
        self.interval_s = interval_s
        self._failed: dict[str, tuple[str, float]] = {}
        """Per model, the version that last failed to load and when."""
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run(), name="quayside-alias-follower")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            await self.poll()

    async def poll(self) -> None:
        """Check every served model once, and move those whose version moved."""
        for name, model in list(self.server.models.items()):
            if not model.source:
                continue
            try:
                version = await asyncio.to_thread(self.probe, model.source)
            except QuaysideError as e:
                logger.warning("could not ask which version '%s' names now: %s", model.source, e.message)
                continue
            except Exception as e:  # the registry is unreachable in some other way: keep serving
                logger.warning("could not ask which version '%s' names now: %s", model.source, e)
                continue
            if version is None or version == (model.version or ""):
                continue
            if not self._due(name, version):
                continue
            await self._move(name, model.source, model.version, version)

    def _due(self, name: str, version: str) -> bool:
        failed = self._failed.get(name)
        return failed is None or failed[0] != version or time.monotonic() - failed[1] >= RETRY_AFTER_S

    async def _move(self, name: str, source: str, old: str | None, new: str) -> None:
        logger.info("'%s' now names version %s of '%s' (serving %s): loading it", source, new, name, old)
        try:
            model = await self.server.reload(name)
        except Exception as e:
            message = e.message if isinstance(e, QuaysideError) else f"{type(e).__name__}: {e}"
            self._failed[name] = (new, time.monotonic())
            logger.error(
                "could not load version %s of '%s' (%s); version %s keeps serving: %s",
                new,
                name,
                source,
                old,
                message,
            )
            return
        self._failed.pop(name, None)
        logger.info("'%s' now answers with version %s (was %s)", name, model.version, old)
