"""Tracking: experiment tags, and logged models that can be deleted (MLflow's rest of the tracking API).

``experiment_tags`` holds MLflow's ``SetExperimentTag`` tags; ``mlflow_models.lifecycle``
marks a logged model deleted as MLflow does (the row and the run's files stay). Existing
logged models are active (the server default fills them in).

Revision ID: 0006_experiment_tags
Revises: 0005_promotion_policy
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006_experiment_tags"
down_revision: str | None = "0005_promotion_policy"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "experiment_tags",
        sa.Column("experiment_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("key", sa.String(length=250), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["experiment_id"],
            ["experiments.id"],
            name=op.f("fk_experiment_tags_experiment_id_experiments"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("experiment_id", "key", name=op.f("pk_experiment_tags")),
    )
    with op.batch_alter_table("mlflow_models") as batch_op:
        batch_op.add_column(
            sa.Column("lifecycle", sa.String(length=16), server_default="active", nullable=False)
        )


def downgrade() -> None:
    # Deleted logged models would come back as live ones: the downgrade drops them.
    bind = op.get_bind()
    models = sa.table("mlflow_models", sa.column("lifecycle", sa.String(length=16)))
    bind.execute(models.delete().where(models.c.lifecycle != "active"))
    with op.batch_alter_table("mlflow_models") as batch_op:
        batch_op.drop_column("lifecycle")
    op.drop_table("experiment_tags")
