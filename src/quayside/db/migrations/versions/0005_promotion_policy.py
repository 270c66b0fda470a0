"""Promotion policy: per-model policies, load-test reports, and the audit log's override flag.

A model's SLO moves from its ``quayside.slo`` tag into its policy row (the policy is now the
one place the SLO lives); the downgrade puts it back as a tag.

Revision ID: 0005_promotion_policy
Revises: 0004_identity
Create Date: 2026-12-02
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005_promotion_policy"
down_revision: str | None = "0004_identity"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

SLO_TAG = "quayside.slo"
MIGRATED_BY = "migration 0005_promotion_policy"

# The tables the data steps read and write, as they are at this revision (never the ORM models).
model_tags = sa.table(
    "registered_model_tags",
    sa.column("model_id", sa.Integer()),
    sa.column("key", sa.String(length=250)),
    sa.column("value", sa.Text()),
)
policies = sa.table(
    "registry_policies",
    sa.column("model_id", sa.Integer()),
    sa.column("protected_stages", sa.Text()),
    sa.column("protected_aliases", sa.Text()),
    sa.column("slo", sa.Text()),
    sa.column("max_report_age_s", sa.Integer()),
    sa.column("min_users", sa.Integer()),
    sa.column("min_duration_s", sa.Float()),
    sa.column("require_image", sa.Boolean()),
    sa.column("updated_at", sa.BigInteger()),
    sa.column("updated_by", sa.String(length=256)),
)


def _model_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["model_id"],
        ["registered_models.id"],
        name=op.f(f"fk_{table}_model_id_registered_models"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "registry_policies",
        sa.Column("model_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("protected_stages", sa.Text(), nullable=False),
        sa.Column("protected_aliases", sa.Text(), nullable=False),
        sa.Column("slo", sa.Text(), nullable=True),
        sa.Column("max_report_age_s", sa.Integer(), nullable=False),
        sa.Column("min_users", sa.Integer(), nullable=False),
        sa.Column("min_duration_s", sa.Float(), nullable=False),
        sa.Column("require_image", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.BigInteger(), nullable=False),
        sa.Column("updated_by", sa.String(length=256), nullable=False),
        _model_fk("registry_policies"),
        sa.PrimaryKeyConstraint("model_id", name=op.f("pk_registry_policies")),
    )
    op.create_table(
        "loadtest_reports",
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("package_digest", sa.String(length=64), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("users", sa.Integer(), nullable=False),
        sa.Column("duration_s", sa.Float(), nullable=False),
        sa.Column("started_at", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_at", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by", sa.String(length=256), nullable=False),
        sa.Column("summary", sa.Text(), nullable=False),
        sa.Column("storage_path", sa.String(length=512), nullable=False),
        _model_fk("loadtest_reports"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_loadtest_reports")),
    )
    op.create_index("ix_loadtest_reports_model_id_version", "loadtest_reports", ["model_id", "version"])
    # Existing entries were not overrides; the server default fills them in.
    with op.batch_alter_table("registry_audit_log") as batch_op:
        batch_op.add_column(sa.Column("override", sa.Boolean(), server_default=sa.false(), nullable=False))

    # Each model's SLO tag becomes its policy, with the default policy's other values.
    bind = op.get_bind()
    tagged = bind.execute(
        sa.select(model_tags.c.model_id, model_tags.c.value).where(model_tags.c.key == SLO_TAG)
    ).all()
    if tagged:
        now = int(time.time() * 1000)
        bind.execute(
            policies.insert(),
            [
                {
                    "model_id": model_id,
                    "protected_stages": '["production"]',
                    "protected_aliases": "[]",
                    "slo": value,
                    "max_report_age_s": 604800,
                    "min_users": 1,
                    "min_duration_s": 10.0,
                    "require_image": False,
                    "updated_at": now,
                    "updated_by": MIGRATED_BY,
                }
                for model_id, value in tagged
            ],
        )
    bind.execute(model_tags.delete().where(model_tags.c.key == SLO_TAG))


def downgrade() -> None:
    # The policies' SLOs go back to being tags (replacing any tag set since the upgrade).
    bind = op.get_bind()
    kept = bind.execute(
        sa.select(policies.c.model_id, policies.c.slo).where(policies.c.slo.is_not(None))
    ).all()
    if kept:
        bind.execute(
            model_tags.delete().where(
                model_tags.c.key == SLO_TAG, model_tags.c.model_id.in_([model_id for model_id, _ in kept])
            )
        )
        bind.execute(
            model_tags.insert(),
            [{"model_id": model_id, "key": SLO_TAG, "value": slo} for model_id, slo in kept],
        )

    with op.batch_alter_table("registry_audit_log") as batch_op:
        batch_op.drop_column("override")
    op.drop_index("ix_loadtest_reports_model_id_version", table_name="loadtest_reports")
    op.drop_table("loadtest_reports")
    op.drop_table("registry_policies")
