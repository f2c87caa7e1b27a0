"""Access reviews: review schedules, certification runs and their items.

Revision ID: rbac_0006
Revises: rbac_0005
Create Date: 2026-12-05

Creates the tables :mod:`crm_rbac_plugin.models.certification` defines.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "rbac_0006"
down_revision = "rbac_0005"
branch_labels = None
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_review_schedule", "rbac_certification_run", "rbac_certification_item")


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it."""
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def int_column(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def text(name: str, length: int | None = None, *, nullable: bool = False) -> sa.Column[Any]:
    kind = sa.String(length=length) if length else sa.Text()
    return sa.Column(name, kind, nullable=nullable)


def upgrade() -> None:
    table = "rbac_review_schedule"
    op.create_table(
        table, int_column("id"), int_column("workspace_id"), int_column("interval_days"),
        sa.Column("require_reason", sa.Boolean(), nullable=False),
        when("last_reviewed_at", nullable=True), when("reminded_due_at", nullable=True),
        when("updated_at"), int_column("updated_by_membership_id", nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id", "CASCADE"), pk(table),
        sa.UniqueConstraint("workspace_id", name=f"uq_{table}_workspace_id"))
    table = "rbac_certification_run"
    op.create_table(
        table, int_column("id"), int_column("workspace_id"), text("resource", 80),
        text("status", 20), when("started_at"),
        int_column("started_by_membership_id", nullable=True), text("started_by_name", 255),
        when("completed_at", nullable=True),
        int_column("completed_by_membership_id", nullable=True), text("completed_by_name", 255),
        fk(table, "workspace_id", "rbac_workspace.id", "CASCADE"), pk(table))
    op.create_index(f"ix_{table}_workspace_id", table, ["workspace_id"])
    table = "rbac_certification_item"
    op.create_table(
        table, int_column("id"), int_column("run_id"), int_column("membership_id"),
        text("member_name", 255), text("why", 80), sa.Column("roles", sa.JSON(), nullable=False),
        text("decision", 20, nullable=True), when("decided_at", nullable=True),
        int_column("decided_by_membership_id", nullable=True), text("decided_by_name", 255),
        text("outcome"), text("reason"),
        fk(table, "run_id", "rbac_certification_run.id", "CASCADE"), pk(table))
    op.create_index(f"ix_{table}_run_id", table, ["run_id"])


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
