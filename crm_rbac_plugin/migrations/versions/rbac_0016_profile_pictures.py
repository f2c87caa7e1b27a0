"""Profile pictures: at most one per user, as the plugin re-encoded it.

Revision ID: rbac_0016
Revises: rbac_0015
Create Date: 2026-12-07

Creates the table :mod:`crm_rbac_plugin.models.pictures` defines. Its
``user_id`` takes the type of the host's user key and points at its table,
as in ``rbac_0002``. The demo's own history runs the same :func:`upgrade`
and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from crm_rbac_plugin.migrations import require_user_table, user_key

revision = "rbac_0016"
down_revision = "rbac_0015"
branch_labels = None
depends_on = None

TABLE = "rbac_profile_picture"


def upgrade() -> None:
    key = user_key()
    require_user_table(op.get_bind(), key.table.name)
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", key.type, nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("updated_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["user_id"], [f"{key.table.name}.{key.name}"], ondelete="CASCADE",
                                name=f"fk_{TABLE}_user_id_{key.table.name}"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("user_id", name=f"uq_{TABLE}_user_id"),
    )


def downgrade() -> None:
    op.drop_table(TABLE)
