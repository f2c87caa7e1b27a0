"""The workspace lifecycle: when a workspace was deleted and when it is purged.

Revision ID: rbac_0009
Revises: rbac_0008
Create Date: 2026-12-05

Adds ``rbac_workspace.deleted_at`` and ``rbac_workspace.purge_after`` (both
NULL for a live workspace; see :mod:`crm_rbac_plugin.lifecycle`). The demo's
own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0009"
down_revision = 'rbac_0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("rbac_workspace") as batch:
        batch.add_column(sa.Column("deleted_at", sa.DateTime(), nullable=True))
        batch.add_column(sa.Column("purge_after", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("rbac_workspace") as batch:
        batch.drop_column("purge_after")
        batch.drop_column("deleted_at")
