"""Build records and the build budget: what ``quayside build`` made of a version, and the policy's bounds on it.

A new table of build records (rows only: the images live in an engine or a registry), and
two policy columns: the ``budget`` a build is judged against and ``require_build``. Existing
policies keep their values, with no budget and no build required.

Revision ID: 0008_build_records
Revises: 0007_model_version_tags
Create Date: 2026-12-02
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008_build_records"
down_revision: str | None = "0007_model_version_tags"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "build_records",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_digest", sa.String(length=64), nullable=False),
        sa.Column("tag", sa.String(length=512), nullable=False),
        sa.Column("image_id", sa.String(length=71), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("base_image", sa.String(length=512), nullable=False),
        sa.Column("quayside_version", sa.String(length=64), nullable=False),
        sa.Column("repo_digest", sa.String(length=512), nullable=True),
        sa.Column("smoke_status", sa.String(length=16), nullable=False),
        sa.Column("cold_start_s", sa.Float(), nullable=True),
        sa.Column("first_inference_ms", sa.Float(), nullable=True),
        sa.Column("smoke_detail", sa.Text(), nullable=False),
        sa.Column("budget", sa.Text(), nullable=True),
        sa.Column("built_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_at", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.String(length=256), nullable=False),
        sa.ForeignKeyConstraint(
            ["model_id"],
            ["registered_models.id"],
            name=op.f("fk_build_records_model_id_registered_models"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_build_records")),
    )
    op.create_index("ix_build_records_model_id_version", "build_records", ["model_id", "version"])
    # Existing policies require no build; the server default fills them in.
    with op.batch_alter_table("registry_policies") as batch_op:
        batch_op.add_column(sa.Column("budget", sa.Text(), nullable=True))
        batch_op.add_column(
            sa.Column("require_build", sa.Boolean(), server_default=sa.false(), nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("registry_policies") as batch_op:
        batch_op.drop_column("require_build")
        batch_op.drop_column("budget")
    op.drop_index("ix_build_records_model_id_version", table_name="build_records")
    op.drop_table("build_records")
