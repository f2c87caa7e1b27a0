"""Attachments: one row per file attached to a protected record.

Revision ID: rbac_0010
Revises: rbac_0009
Create Date: 2026-12-05

Creates the table :mod:`crm_rbac_plugin.models.files` defines. The bytes
live in the configured storage, never in the database.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0010"
down_revision = 'rbac_0009'
branch_labels = None
depends_on = None

TABLE = "rbac_attachment"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("resource", sa.String(length=80), nullable=False),
        sa.Column("record_id", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=64), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("uploaded_by_membership_id", sa.Integer(), nullable=True),
        sa.Column("uploaded_by_name", sa.String(length=255), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.ForeignKeyConstraint(["workspace_id"], ["rbac_workspace.id"], ondelete="CASCADE",
                                name="fk_rbac_attachment_workspace_id_rbac_workspace"),
        sa.PrimaryKeyConstraint("id", name="pk_rbac_attachment"),
        sa.UniqueConstraint("storage_key", name="uq_rbac_attachment_storage_key"),
    )
    op.create_index("ix_rbac_attachment_record", TABLE, ["resource", "record_id"])
    op.create_index("ix_rbac_attachment_workspace_id", TABLE, ["workspace_id"])


def downgrade() -> None:
    op.drop_index("ix_rbac_attachment_workspace_id", table_name=TABLE)
    op.drop_index("ix_rbac_attachment_record", table_name=TABLE)
    op.drop_table(TABLE)
