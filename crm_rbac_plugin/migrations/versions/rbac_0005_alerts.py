"""Anomaly alerts: thresholds, alerts, counters, seen addresses; the workspace's time zone.

Revision ID: rbac_0005
Revises: rbac_0004
Create Date: 2026-12-05

Creates the tables :mod:`crm_rbac_plugin.models.alerts` defines and adds
``rbac_workspace.timezone`` (an IANA name, "UTC" for existing workspaces).
The demo's own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "rbac_0005"
down_revision = "rbac_0004"
branch_labels = None
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_alert_settings", "rbac_alert", "rbac_alert_counter", "rbac_alert_seen_address")


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it."""
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def integer(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    with op.batch_alter_table("rbac_workspace") as batch:
        batch.add_column(sa.Column("timezone", sa.String(length=64), server_default="UTC",
                                   nullable=False))
    create_settings_table()
    create_alert_table()
    create_counter_tables()


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)
    with op.batch_alter_table("rbac_workspace") as batch:
        batch.drop_column("timezone")


def create_settings_table() -> None:
    table = "rbac_alert_settings"
    op.create_table(
        table, integer("id"), integer("workspace_id"),
        *(integer(name, nullable=True) for name in (
            "export_rows_per_hour", "refusals_per_10_minutes", "deletions_per_hour",
            "new_address_days")),
        sa.Column("business_days", sa.String(length=7), nullable=True),
        integer("business_start_hour", nullable=True), integer("business_end_hour", nullable=True),
        when("updated_at"), integer("updated_by_membership_id", nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id", "CASCADE"), pk(table),
        sa.UniqueConstraint("workspace_id", name=f"uq_{table}_workspace_id"))


def create_alert_table() -> None:
    table = "rbac_alert"
    op.create_table(
        table, integer("id"), integer("workspace_id"),
        sa.Column("rule", sa.String(length=40), nullable=False),
        sa.Column("severity", sa.String(length=10), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        integer("membership_id", nullable=True),
        sa.Column("summary", sa.String(length=300), nullable=False),
        sa.Column("detail", sa.JSON(), nullable=True),
        when("created_at"), when("acknowledged_at", nullable=True),
        integer("acknowledged_by_id", nullable=True), when("resolved_at", nullable=True),
        integer("resolved_by_id", nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id", "CASCADE"),
        fk(table, "membership_id", "rbac_membership.id", "SET NULL"),
        fk(table, "acknowledged_by_id", "rbac_membership.id", "SET NULL"),
        fk(table, "resolved_by_id", "rbac_membership.id", "SET NULL"), pk(table))
    op.create_index("ix_rbac_alert_ws_status", table, ["workspace_id", "status"])
    op.create_index("ix_rbac_alert_ws_created", table, ["workspace_id", "created_at"])


def create_counter_tables() -> None:
    table = "rbac_alert_counter"
    op.create_table(
        table, integer("id"), integer("workspace_id"), integer("membership_id"),
        sa.Column("rule", sa.String(length=40), nullable=False), when("window_start"),
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.Column("mark", sa.BigInteger(), nullable=True), pk(table),
        sa.UniqueConstraint("workspace_id", "membership_id", "rule", "window_start",
                            name=f"uq_{table}_workspace_id"))
    op.create_index("ix_rbac_alert_counter_window_start", table, ["window_start"])
    table = "rbac_alert_seen_address"
    op.create_table(
        table, integer("id"), integer("membership_id"),
        sa.Column("ip", sa.String(length=64), nullable=False),
        when("first_seen_at"), when("last_seen_at"), when("previous_seen_at", nullable=True),
        fk(table, "membership_id", "rbac_membership.id", "CASCADE"), pk(table),
        sa.UniqueConstraint("membership_id", "ip", name=f"uq_{table}_membership_id"))
