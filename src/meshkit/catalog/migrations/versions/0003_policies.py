"""Policy results per product version, and column-level lineage with classifications.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-22
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "policy_results",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(), nullable=False),
        sa.Column("semver", sa.String(), nullable=False),
        sa.Column("spec_hash", sa.String(), nullable=False),
        sa.Column("run_id", sa.String(), nullable=True),
        sa.Column("policy", sa.String(), nullable=False),
        sa.Column("rule", sa.String(), nullable=False),
        sa.Column("enforcement", sa.String(), nullable=False),
        sa.Column("origin", sa.String(), nullable=False),
        sa.Column("outcome", sa.String(), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("hint", sa.Text(), nullable=True),
        sa.Column("violations", sa.JSON(), nullable=False),
        sa.Column("waiver", sa.JSON(), nullable=True),
        sa.Column("evaluated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_policy_results"),
    )
    op.create_index(
        "ix_policy_results_product_id_evaluated_at",
        "policy_results",
        ["product_id", "evaluated_at"],
    )
    op.create_table(
        "column_lineage",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("product_id", sa.String(), nullable=False),
        sa.Column("column", sa.String(), nullable=False),
        sa.Column("source", sa.String(), nullable=False),
        sa.Column("classification", sa.String(), nullable=False),
        sa.Column("pii", sa.Boolean(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_column_lineage"),
        sa.UniqueConstraint(
            "product_id", "column", "source", name="uq_column_lineage_product_id_column_source"
        ),
    )


def downgrade() -> None:
    op.drop_table("column_lineage")
    op.drop_index("ix_policy_results_product_id_evaluated_at", table_name="policy_results")
    op.drop_table("policy_results")
