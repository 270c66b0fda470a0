"""The fluent tracking API: ``with quayside.start_run(...) as run:`` and module-level ``log_*``.

Runs form a stack: a run started while another is active becomes its child. A
``with`` block that raises marks its run FAILED (KILLED for Ctrl-C) and re-raises.
A process started by ``quayside run`` has ``QUAYSIDE_RUN_ID`` set; its logging
lands in that run, whose status the launcher owns.
"""

from __future__ import annotations

import atexit
import sys
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import TracebackType
from typing import Any

from quayside.config import load_settings
from quayside.errors import UsageError
from quayside.tracking.client import Client
from quayside.tracking.context import run_context
from quayside.tracking.entities import ArtifactInfo, LoggedModel, Metric, Run, RunStatus


class ActiveRun:
    """A run being logged to; also a context manager that ends the run when the block ends."""

    def __init__(self, client: Client, run: Run, *, owned: bool) -> None:
        self.client = client
        self.run_id = run.id
        self.experiment_id = run.experiment_id
        self.name = run.name
        self._owned = owned
        self._ended = False

    def __repr__(self) -> str:
        return f"ActiveRun(run_id='{self.run_id}', name='{self.name}')"

    @property
    def info(self) -> Run:
        """The run as stored now: status, params, latest metrics, tags, models."""
        return self.client.get_run(self.run_id)

    def __enter__(self) -> ActiveRun:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if exc_type is None:
            self.end(RunStatus.FINISHED)
        elif issubclass(exc_type, KeyboardInterrupt):
            self.end(RunStatus.KILLED)
        else:
            self.end(RunStatus.FAILED)

    def end(self, status: RunStatus | str = RunStatus.FINISHED) -> None:
        """Leave the stack; an owned run is marked ``status`` (a resumed ``QUAYSIDE_RUN_ID`` run is left to its launcher)."""
        if self._ended:
            return
        self._ended = True
        with _lock:
            if self in _stack:
                _stack.remove(self)
        if self._owned:
            self.client.set_terminated(self.run_id, status)

    # The same logging calls as the module functions, bound to this run.
    def log_param(self, key: str, value: Any) -> None:
        self.client.log_param(self.run_id, key, value)

    def log_params(self, params: Mapping[str, Any]) -> None:
        self.client.log_params(self.run_id, params)

    def log_metric(self, key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
        self.client.log_metric(self.run_id, key, value, step, timestamp)

    def log_metrics(self, metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
        self.client.log_metrics(self.run_id, metrics, step, timestamp)

    def log_batch(
        self,
        metrics: Sequence[Metric] = (),
        params: Mapping[str, Any] | None = None,
        tags: Mapping[str, Any] | None = None,
    ) -> None:
        """Many metric points (any keys and steps), params and tags in one round trip and one transaction."""
        self.client.log_batch(self.run_id, metrics, params, tags)

    def set_tag(self, key: str, value: Any) -> None:
        self.client.set_tag(self.run_id, key, value)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        self.client.set_tags(self.run_id, tags)

    def log_artifact(self, local_path: str | Path, artifact_path: str | None = None) -> ArtifactInfo:
        return self.client.log_artifact(self.run_id, local_path, artifact_path)

    def log_artifacts(self, local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
        return self.client.log_artifacts(self.run_id, local_dir, artifact_path)

    def log_model(self, model: Any, name: str, **save_model_kwargs: Any) -> LoggedModel:
        return self.client.log_model(self.run_id, model, name, **save_model_kwargs)


_stack: list[ActiveRun] = []
_lock = threading.RLock()
_state = {"hooks_installed": False, "failed": False}


def start_run(
    experiment: str | None = None,
    run_name: str | None = None,
    tags: Mapping[str, Any] | None = None,
    *,
    run_id: str | None = None,
) -> ActiveRun:
    """Start a run (a child of the active one, if any) and make it active.

    ``experiment`` defaults to the parent's, else ``QUAYSIDE_EXPERIMENT`` (``default``), and is
    created if new.
    ``run_id=`` resumes an existing run instead. Tags record the git commit and dirty flag,
    user, host, Python and key package versions and the command line, plus ``tags``.
    """
    settings = load_settings()
    client = Client(settings=settings)
    with _lock:
        if run_id is None and not _stack and settings.run_id:
            # Launched by `quayside run`: log into its run, and leave its status to the launcher.
            active = ActiveRun(client, client.get_run(settings.run_id), owned=False)
        elif run_id is not None:
            active = ActiveRun(client, client.get_run(run_id), owned=True)
        else:
            parent = _stack[-1] if _stack else None
            # A child joins its parent's experiment unless told otherwise.
            where: str | int | None = experiment
            if where is None and parent is not None:
                where = parent.experiment_id
            all_tags = run_context() | {k: str(v) for k, v in (tags or {}).items()}
            run = client.create_run(
                where, run_name, all_tags, parent_run_id=parent.run_id if parent else None
            )
            active = ActiveRun(client, run, owned=True)
        _stack.append(active)
        _install_exit_hooks()
    return active


def active_run() -> ActiveRun | None:
    """The innermost active run, or ``None``."""
    with _lock:
        return _stack[-1] if _stack else None


def end_run(status: RunStatus | str = RunStatus.FINISHED) -> None:
    """End the innermost active run (for code that calls ``start_run()`` without ``with``)."""
    run = active_run()
    if run is None:
        raise UsageError("there is no active run to end")
    run.end(status)


def _current() -> ActiveRun:
    run = active_run()
    if run is not None:
        return run
    if load_settings().run_id:
        return start_run()
    raise UsageError(
        "no active run: wrap the code in `with quayside.start_run(experiment=...):` before logging"
    )


def log_param(key: str, value: Any) -> None:
    """Log a param (written once; the same value again is a no-op)."""
    _current().log_param(key, value)


def log_params(params: Mapping[str, Any]) -> None:
    _current().log_params(params)


def log_metric(key: str, value: float, step: int = 0, timestamp: int | None = None) -> None:
    """Log one point of a metric; a key holds as many points as are logged."""
    _current().log_metric(key, value, step, timestamp)


def log_metrics(metrics: Mapping[str, float], step: int = 0, timestamp: int | None = None) -> None:
    """Log one point for each key, in one round trip."""
    _current().log_metrics(metrics, step, timestamp)


def log_batch(
    metrics: Sequence[Metric] = (),
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
) -> None:
    """Log many metric points (``quayside.Metric(key, value, step)``), params and tags at once: the fast path."""
    _current().log_batch(metrics, params, tags)


def set_tag(key: str, value: Any) -> None:
    _current().set_tag(key, value)


def set_tags(tags: Mapping[str, Any]) -> None:
    _current().set_tags(tags)


def log_artifact(local_path: str | Path, artifact_path: str | None = None) -> ArtifactInfo:
    """Copy a file into the active run's artifacts (under the directory ``artifact_path``)."""
    return _current().log_artifact(local_path, artifact_path)


def log_artifacts(local_dir: str | Path, artifact_path: str | None = None) -> list[ArtifactInfo]:
    """Copy a directory's files into the active run's artifacts."""
    return _current().log_artifacts(local_dir, artifact_path)


def log_model(model: Any, name: str, **save_model_kwargs: Any) -> LoggedModel:
    """Save a model package into the active run's artifacts and record its digest and signature."""
    return _current().log_model(model, name, **save_model_kwargs)


# --- runs left open when the process ends ----------------------------------------------------


def _install_exit_hooks() -> None:
    if _state["hooks_installed"]:
        return
    _state["hooks_installed"] = True
    previous = sys.excepthook

    def excepthook(exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> None:
        _state["failed"] = True
        previous(exc_type, exc, tb)

    sys.excepthook = excepthook
    atexit.register(_end_open_runs)


def _end_open_runs() -> None:
    """Runs started without ``with`` and never ended: FAILED if the script died of an exception."""
    status = RunStatus.FAILED if _state["failed"] else RunStatus.FINISHED
    while True:
        run = active_run()
        if run is None:
            return
        try:
            run.end(status)
        except Exception as e:  # at exit there is nobody left to raise to; say what was lost
            print(f"quayside: could not end run {run.run_id}: {e}", file=sys.stderr)
