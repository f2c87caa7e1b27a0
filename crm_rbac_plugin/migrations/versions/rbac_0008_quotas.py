"""Quotas: record caps per role.

Revision ID: rbac_0008
Revises: rbac_0007
Create Date: 2026-12-05

Creates the table :mod:`crm_rbac_plugin.models.quotas` defines. Seats per
plan are configuration (``RBAC_PLAN_SEATS``) and need no column.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0008"
down_revision = 'rbac_0007'
branch_labels = None
depends_on = None

TABLE = "rbac_role_quota"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=60), nullable=False),
        sa.Column("max_records", sa.Integer(), nullable=False),
        sa.CheckConstraint("max_records >= 0", name=f"ck_{TABLE}_max_records"),
        sa.ForeignKeyConstraint(["role_id"], ["rbac_role.id"], ondelete="CASCADE",
                                name=f"fk_{TABLE}_role_id_rbac_role"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("role_id", "resource", name=f"uq_{TABLE}_role_id"))


def downgrade() -> None:
    op.drop_table(TABLE)
