"""Conditional and group roles: conditions on roles and assignments, roles given to departments.

Revision ID: rbac_0007
Revises: rbac_0006
Create Date: 2026-12-05

Adds ``access_condition`` (JSON, weekdays, a time-of-day window and networks;
see :mod:`crm_rbac_plugin.role_conditions`) to ``rbac_role`` and
``rbac_member_role``, and creates ``rbac_department_role``
(:mod:`crm_rbac_plugin.models.groups`).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0007"
down_revision = "rbac_0006"
branch_labels = None
depends_on = None

TABLE = "rbac_department_role"


def fk(column: str, target: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it."""
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE",
                                   name=f"fk_{TABLE}_{column}_{target.split('.')[0]}")


def upgrade() -> None:
    for table in ("rbac_role", "rbac_member_role"):
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("access_condition", sa.JSON(), nullable=True))
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("workspace_id", sa.Integer(), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=False),
        sa.Column("role_id", sa.Integer(), nullable=False),
        sa.Column("access_condition", sa.JSON(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        fk("workspace_id", "rbac_workspace.id"), fk("department_id", "rbac_department.id"),
        fk("role_id", "rbac_role.id"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{TABLE}"),
        sa.UniqueConstraint("workspace_id", "department_id", "role_id", name=f"uq_{TABLE}_workspace_id"))
    op.create_index(f"ix_{TABLE}_role_id", TABLE, ["role_id"])


def downgrade() -> None:
    op.drop_table(TABLE)
    for table in ("rbac_member_role", "rbac_role"):
        with op.batch_alter_table(table) as batch:
            batch.drop_column("access_condition")
