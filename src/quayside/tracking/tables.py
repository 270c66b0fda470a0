"""The tracking tables. Times are milliseconds since the epoch, in UTC.

A metric is a series of points; nothing is ever updated in place, so concurrent
writers only ever insert. A NULL metric value stands for NaN (SQLite stores no NaN).
"""

from __future__ import annotations

from sqlalchemy import BigInteger, Boolean, Double, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quayside.db.base import Base
from quayside.db.sql import BigId, Lifecycle

KEY_LENGTH = 250
NAME_LENGTH = 256


class ExperimentRow(Base):
    __tablename__ = "experiments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH), unique=True)
    lifecycle: Mapped[str] = mapped_column(String(16), default=Lifecycle.ACTIVE)
    created_at: Mapped[int] = mapped_column(BigInteger)


class ExperimentTagRow(Base):
    """A tag on an experiment (MLflow's ``SetExperimentTag``; ``mlflow.note.content`` is its description)."""

    __tablename__ = "experiment_tags"

    experiment_id: Mapped[int] = mapped_column(
        ForeignKey("experiments.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class RunRow(Base):
    __tablename__ = "runs"

    id: Mapped[str] = mapped_column(String(32), primary_key=True)
    experiment_id: Mapped[int] = mapped_column(ForeignKey("experiments.id"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(16))
    lifecycle: Mapped[str] = mapped_column(String(16), default=Lifecycle.ACTIVE)
    start_time: Mapped[int] = mapped_column(BigInteger)
    end_time: Mapped[int | None] = mapped_column(BigInteger)
    exit_code: Mapped[int | None] = mapped_column(Integer)
    parent_run_id: Mapped[str | None] = mapped_column(ForeignKey("runs.id"), index=True)


class ParamRow(Base):
    __tablename__ = "params"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class TagRow(Base):
    __tablename__ = "tags"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    key: Mapped[str] = mapped_column(String(KEY_LENGTH), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class MetricRow(Base):
    __tablename__ = "metrics"
    __table_args__ = (Index("ix_metrics_run_id_key_step", "run_id", "key", "step", "timestamp"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(KEY_LENGTH))
    value: Mapped[float | None] = mapped_column(Double)
    step: Mapped[int] = mapped_column(BigInteger)
    timestamp: Mapped[int] = mapped_column(BigInteger)


class LoggedModelRow(Base):
    """A model package logged as an artifact of a run, with what its manifest says."""

    __tablename__ = "logged_models"

    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), primary_key=True)
    path: Mapped[str] = mapped_column(String(1024), primary_key=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    flavor: Mapped[str] = mapped_column(String(64))
    digest: Mapped[str] = mapped_column(String(64))
    signature: Mapped[str] = mapped_column(Text)
    onnx_servable: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[int] = mapped_column(BigInteger)


class MlflowModelRow(Base):
    """A model the MLflow client logged (MLflow 3's LoggedModel); its files are artifacts of its run.

    ``params``, ``tags`` and ``metrics`` are JSON objects: MLflow reads and writes them whole
    with the model, and a search reads them in Python (:mod:`quayside.tracking.model_search`).
    A deleted model (``lifecycle``) keeps its row and its files, as MLflow's does, but is found
    by nothing.
    """

    __tablename__ = "mlflow_models"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    experiment_id: Mapped[int] = mapped_column(Integer, index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    artifact_path: Mapped[str] = mapped_column(String(1024))
    model_type: Mapped[str] = mapped_column(String(NAME_LENGTH))
    status: Mapped[str] = mapped_column(String(32))
    lifecycle: Mapped[str] = mapped_column(String(16), default=Lifecycle.ACTIVE)
    params: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    metrics: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[int] = mapped_column(BigInteger)


class MlflowDatasetInputRow(Base):
    """A dataset the MLflow client recorded as an input of a run (``mlflow.log_input``, autologging).

    MLflow's dataset message as it came: ``source``, ``schema`` and ``profile`` are its
    JSON strings ("" when absent), ``tags`` a JSON object (``mlflow.data.context``: train, eval ...).
    """

    __tablename__ = "mlflow_dataset_inputs"

    id: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=True)
    run_id: Mapped[str] = mapped_column(ForeignKey("runs.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(NAME_LENGTH))
    digest: Mapped[str] = mapped_column(String(128))
    source_type: Mapped[str] = mapped_column(String(64))
    source: Mapped[str] = mapped_column(Text)
    schema: Mapped[str] = mapped_column(Text)
    profile: Mapped[str] = mapped_column(Text)
    tags: Mapped[str] = mapped_column(Text)
    created_at: Mapped[int] = mapped_column(BigInteger)
