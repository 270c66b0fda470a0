"""What the tracking API hands out: frozen dataclasses, never ORM rows.

Each has ``to_dict``/``from_dict`` for the REST API. JSON has no NaN or infinity,
so metric values that are not finite travel as the strings ``"NaN"``,
``"Infinity"`` and ``"-Infinity"``. The checks of what may be logged live here too,
so that the store and the REST backend (which must not import sqlalchemy) share them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from quayside.errors import UsageError

KEY_PATTERN = re.compile(r"[A-Za-z0-9_\-./ ]{1,250}")
MAX_PARAM_LENGTH = 6000
MAX_TAG_LENGTH = 8000
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
"""The range of the 64-bit integer columns (steps, timestamps, run times, exit codes) and of offsets."""


class RunStatus(StrEnum):
    RUNNING = "RUNNING"
    FINISHED = "FINISHED"
    FAILED = "FAILED"
    KILLED = "KILLED"

    @classmethod
    def parse(cls, value: str) -> RunStatus:
        try:
            return cls(value.upper())
        except ValueError:
            raise UsageError(
                f"run status must be one of {', '.join(s.value for s in cls)}, not '{value}'"
            ) from None


def check_key(kind: str, key: str) -> str:
    """Refuse a param/metric/tag key the search language could not name."""
    if not isinstance(key, str) or not KEY_PATTERN.fullmatch(key):
        raise UsageError(f"{kind} key {key!r} is invalid: use 1 to 250 letters, digits, spaces and _ - . /")
    return key


def encode_float(value: float | None) -> float | str:
    if value is None or math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "Infinity" if value > 0 else "-Infinity"
    return value


def decode_float(value: Any) -> float:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"metric value must be a number, not {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise UsageError(f"metric value must be a number, not {value!r}")
    return float(value)


@dataclass(frozen=True)
class Experiment:
    id: int
    name: str
    lifecycle: str
    created_at: int
    tags: Mapping[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.name,
            "lifecycle": self.lifecycle,
            "created_at": self.created_at,
            "tags": dict(self.tags),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Experiment:
        return cls(
            int(data["id"]),
            str(data["name"]),
            str(data["lifecycle"]),
            int(data["created_at"]),
            dict(data.get("tags", {})),
        )


@dataclass(frozen=True)
class ExperimentActivity:
    """How busy an experiment is: its active runs, and when one last started or ended (ms, or None)."""

    experiment_id: int
    runs: int
    last_activity: int | None


@dataclass(frozen=True)
class RunKeys:
    """The param and metric keys logged in an experiment's runs (the columns a runs table can show)."""

    params: tuple[str, ...]
    metrics: tuple[str, ...]


@dataclass(frozen=True)
class Metric:
    """One point of a metric series."""

    key: str
    value: float
    step: int = 0
    timestamp: int = 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "value": encode_float(self.value),
            "step": self.step,
            "timestamp": self.timestamp,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Metric:
        return cls(str(data["key"]), decode_float(data["value"]), int(data["step"]), int(data["timestamp"]))


@dataclass(frozen=True)
class LoggedModel:
    """A model package logged in a run, as its manifest described it when it was logged."""

    run_id: str
    path: str
    name: str
    flavor: str
    digest: str
    signature: Mapping[str, Any]
    onnx_servable: bool
    created_at: int

    @property
    def uri(self) -> str:
        return f"runs:/{self.run_id}/{self.path}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "run_id": self.run_id,
            "path": self.path,
            "name": self.name,
            "flavor": self.flavor,
            "digest": self.digest,
            "signature": dict(self.signature),
            "onnx_servable": self.onnx_servable,
            "created_at": self.created_at,
            "uri": self.uri,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> LoggedModel:
        return cls(
            run_id=str(data["run_id"]),
            path=str(data["path"]),
            name=str(data["name"]),
            flavor=str(data["flavor"]),
            digest=str(data["digest"]),
            signature=dict(data["signature"]),
            onnx_servable=bool(data["onnx_servable"]),
            created_at=int(data["created_at"]),
        )


@dataclass(frozen=True)
class Run:
    """A run and everything logged to it; ``metrics`` holds each key's latest point."""

    id: str
    experiment_id: int
    name: str
    status: RunStatus
    lifecycle: str
    start_time: int
    end_time: int | None = None
    exit_code: int | None = None
    parent_run_id: str | None = None
    params: Mapping[str, str] = field(default_factory=dict)
    metrics: Mapping[str, Metric] = field(default_factory=dict)
    tags: Mapping[str, str] = field(default_factory=dict)
    models: tuple[LoggedModel, ...] = ()

    @property
    def latest_metrics(self) -> dict[str, float]:
        return {key: point.value for key, point in self.metrics.items()}

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "experiment_id": self.experiment_id,
            "name": self.name,
            "status": self.status.value,
            "lifecycle": self.lifecycle,
            "start_time": self.start_time,
            "end_time": self.end_time,
            "exit_code": self.exit_code,
            "parent_run_id": self.parent_run_id,
            "params": dict(self.params),
            "metrics": [m.to_dict() for m in self.metrics.values()],
            "tags": dict(self.tags),
            "models": [m.to_dict() for m in self.models],
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Run:
        metrics = [Metric.from_dict(m) for m in data.get("metrics", [])]
        return cls(
            id=str(data["id"]),
            experiment_id=int(data["experiment_id"]),
            name=str(data["name"]),
            status=RunStatus(data["status"]),
            lifecycle=str(data["lifecycle"]),
            start_time=int(data["start_time"]),
            end_time=data.get("end_time"),
            exit_code=data.get("exit_code"),
            parent_run_id=data.get("parent_run_id"),
            params=dict(data.get("params", {})),
            metrics={m.key: m for m in metrics},
            tags=dict(data.get("tags", {})),
            models=tuple(LoggedModel.from_dict(m) for m in data.get("models", [])),
        )


@dataclass(frozen=True)
class ArtifactInfo:
    """A file or directory under a run's artifacts; ``path`` is relative to the run's artifact root."""

    path: str
    is_dir: bool
    size: int | None

    def to_dict(self) -> dict[str, Any]:
        return {"path": self.path, "is_dir": self.is_dir, "size": self.size}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> ArtifactInfo:
        return cls(str(data["path"]), bool(data["is_dir"]), data.get("size"))


# --- what may be logged: checked by the store, and by the REST backend before a batch is cut ---


def check_int64(what: str, value: int | None) -> int | None:
    """``value`` as an int if it fits a 64-bit column (``None`` stays ``None``), else a :class:`UsageError`."""
    if value is not None and not INT64_MIN <= int(value) <= INT64_MAX:
        raise UsageError(f"{what} {value} is out of range (a 64-bit integer)")
    return None if value is None else int(value)


def metric_number(key: str, value: Any) -> float:
    """A metric's value as a float; a boolean is a mistake, not a number (``float(True)`` is 1.0)."""
    if isinstance(value, bool):
        raise UsageError(f"metric '{key}' must be a number, not {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise UsageError(f"metric '{key}' must be a number, not {value!r}") from None


def check_metric(metric: Metric) -> Metric:
    """The point, its value a float and its step and timestamp ints, if the store can hold it."""
    key = check_key("metric", metric.key)
    return Metric(
        key,
        metric_number(key, metric.value),
        check_int64(f"step of metric '{key}'", metric.step),
        check_int64(f"timestamp of metric '{key}'", metric.timestamp),
    )


def param_values(params: Mapping[str, Any]) -> dict[str, str]:
    """Params as text, each key checked and each value within :data:`MAX_PARAM_LENGTH`."""
    return _text_values("param", params, MAX_PARAM_LENGTH)


def tag_values(tags: Mapping[str, Any]) -> dict[str, str]:
    """Tags as text, each key checked and each value within :data:`MAX_TAG_LENGTH`."""
    return _text_values("tag", tags, MAX_TAG_LENGTH)


def _text_values(kind: str, entries: Mapping[str, Any], max_length: int) -> dict[str, str]:
    values: dict[str, str] = {}
    for key, value in entries.items():
        check_key(kind, key)
        text = str(value)
        if len(text) > max_length:
            raise UsageError(f"{kind} '{key}' is {len(text)} characters long; the limit is {max_length}")
        values[key] = text
    return values
