"""Whether a role lets its members sign in: ``rbac_role.sign_in``.

Revision ID: rbac_0014
Revises: rbac_0013
Create Date: 2026-12-07

Every existing role keeps letting its members sign in (the server default).
A member whose roles in force all have it off may use the workspace through
an API token only (see :mod:`crm_rbac_plugin.security.signin`). The demo's
own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0014"
down_revision = "rbac_0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ADD COLUMN, on SQLite too: a batch rebuild would drop the table's
    # AUTOINCREMENT (``rbac_0012``).
    op.add_column("rbac_role", sa.Column("sign_in", sa.Boolean(), nullable=False,
                                         server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table("rbac_role",
                              table_kwargs={"sqlite_autoincrement": True}) as batch:
        batch.drop_column("sign_in")
