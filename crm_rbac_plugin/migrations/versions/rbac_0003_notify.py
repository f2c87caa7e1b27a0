"""Notifications: the outbox of in-app entries and mails, and each member's channels.

Revision ID: rbac_0003_notify
Revises: rbac_0002
Create Date: 2026-12-05

Creates the tables :mod:`crm_rbac_plugin.models.notify` defines.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "rbac_0003_notify"
down_revision = "rbac_0002"
branch_labels = None
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_notification", "rbac_notification_preference")


def fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it (both cascade)."""
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE",
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def int_column(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    table = "rbac_notification"
    op.create_table(
        table, int_column("id"), int_column("workspace_id"), int_column("membership_id"),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("event", sa.String(length=60), nullable=False),
        sa.Column("summary", sa.String(length=500), nullable=False),
        sa.Column("link", sa.String(length=500), nullable=False),
        when("created_at"), when("read_at", nullable=True),
        sa.Column("mail_state", sa.String(length=12), nullable=False),
        int_column("attempts"), when("next_attempt_at", nullable=True),
        when("sent_at", nullable=True), sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("dedupe_key", sa.String(length=120), nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id"),
        fk(table, "membership_id", "rbac_membership.id"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("membership_id", "dedupe_key", name=f"uq_{table}_membership_id"))
    op.create_index(f"ix_{table}_unread", table, ["membership_id", "read_at"])
    op.create_index(f"ix_{table}_mail", table, ["mail_state", "next_attempt_at"])
    table = "rbac_notification_preference"
    op.create_table(
        table, int_column("id"), int_column("membership_id"),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("channel", sa.String(length=10), nullable=False),
        fk(table, "membership_id", "rbac_membership.id"),
        sa.PrimaryKeyConstraint("id", name=f"pk_{table}"),
        sa.UniqueConstraint("membership_id", "category", name=f"uq_{table}_membership_id"))


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
