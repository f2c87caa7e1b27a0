"""Whether a role lets its members use the JSON API: ``rbac_role.api_access``.

Revision ID: rbac_0018
Revises: rbac_0017
Create Date: 2026-12-07

Every existing role keeps letting its members use API tokens (the server
default). A member whose roles in force all have it off uses the workspace
through a browser session only (see :mod:`crm_rbac_plugin.security.signin`).
The demo's own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0018"
down_revision = "rbac_0017"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, on SQLite too: a batch rebuild would drop the table's
    # AUTOINCREMENT (``rbac_0012``).
    op.add_column("rbac_role", sa.Column("api_access", sa.Boolean(), nullable=False,
                                         server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("rbac_role",
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("api_access")
