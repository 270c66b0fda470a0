"""Tracking: what the MLflow client records beyond runs — logged models (MLflow 3) and dataset inputs.

Revision ID: 0003_mlflow_compat
Revises: 0002_registry
Create Date: 2026-11-30
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003_mlflow_compat"
down_revision: str | None = "0002_registry"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "mlflow_models",
        sa.Column("id", sa.String(length=64), nullable=False),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("experiment_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("artifact_path", sa.String(length=1024), nullable=False),
        sa.Column("model_type", sa.String(length=256), nullable=False),
        sa.Column("status", sa.String(length=32), nullable=False),
        sa.Column("params", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_mlflow_models_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_models")),
    )
    op.create_index(op.f("ix_mlflow_models_run_id"), "mlflow_models", ["run_id"])
    op.create_index(op.f("ix_mlflow_models_experiment_id"), "mlflow_models", ["experiment_id"])
    op.create_table(
        "mlflow_dataset_inputs",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("run_id", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=256), nullable=False),
        sa.Column("digest", sa.String(length=128), nullable=False),
        sa.Column("source_type", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.Column("schema", sa.Text(), nullable=False),
        sa.Column("profile", sa.Text(), nullable=False),
        sa.Column("tags", sa.Text(), nullable=False),
        sa.Column("created_at", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["run_id"], ["runs.id"], name=op.f("fk_mlflow_dataset_inputs_run_id_runs"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_mlflow_dataset_inputs")),
    )
    op.create_index(op.f("ix_mlflow_dataset_inputs_run_id"), "mlflow_dataset_inputs", ["run_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_mlflow_dataset_inputs_run_id"), table_name="mlflow_dataset_inputs")
    op.drop_table("mlflow_dataset_inputs")
    op.drop_index(op.f("ix_mlflow_models_experiment_id"), table_name="mlflow_models")
    op.drop_index(op.f("ix_mlflow_models_run_id"), table_name="mlflow_models")
    op.drop_table("mlflow_models")
