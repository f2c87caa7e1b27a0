"""Account protection: security policies, MFA credentials, recovery codes, sessions, throttling.

Revision ID: rbac_0002
Revises: rbac_0001
Create Date: 2026-12-05

Creates the tables :mod:`crm_rbac_plugin.models.security` defines. Columns
holding a user's key take the type of the host's user key and point at its
table, as in ``rbac_0001``.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_rbac_plugin.migrations import require_user_table, user_key

revision = "rbac_0002"
down_revision = "rbac_0001"
branch_labels = None
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_security_policy", "rbac_mfa_credential", "rbac_recovery_code", "rbac_session",
          "rbac_sign_in_throttle")


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it."""
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def uq(table: str, column: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(column, name=f"uq_{table}_{column}")


def int_column(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def upgrade() -> None:
    key = user_key()
    require_user_table(op.get_bind(), key.table.name)
    users = f"{key.table.name}.{key.name}"
    create_policy_table()
    create_mfa_tables(key.type, users)
    create_session_tables(key.type, users)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)


def create_policy_table() -> None:
    table = "rbac_security_policy"
    op.create_table(
        table, int_column("id"), int_column("workspace_id"),
        sa.Column("mfa", sa.String(length=20), nullable=False),
        *(int_column(name) for name in (
            "step_up_minutes", "idle_minutes_privileged", "absolute_minutes_privileged",
            "idle_minutes_member", "absolute_minutes_member")),
        int_column("max_sessions", nullable=True),
        sa.Column("ip_allowlist", sa.Text(), nullable=False),
        int_column("password_min_length"), int_column("password_min_score"),
        when("updated_at"), int_column("updated_by_membership_id", nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk(table), uq(table, "workspace_id"))


def create_mfa_tables(key_type: Any, users: str) -> None:
    table = "rbac_mfa_credential"
    op.create_table(
        table, int_column("id"), sa.Column("user_id", key_type, nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        when("confirmed_at", nullable=True),
        sa.Column("last_step", sa.BigInteger(), nullable=True),
        when("created_at"),
        fk(table, "user_id", users, "CASCADE"), pk(table), uq(table, "user_id"))
    table = "rbac_recovery_code"
    op.create_table(
        table, int_column("id"), sa.Column("user_id", key_type, nullable=False),
        sa.Column("code_hash", sa.String(length=128), nullable=False),
        when("used_at", nullable=True),
        fk(table, "user_id", users, "CASCADE"), pk(table))
    op.create_index("ix_rbac_recovery_code_user_id", table, ["user_id"])


def create_session_tables(key_type: Any, users: str) -> None:
    table = "rbac_session"
    op.create_table(
        table, int_column("id"), sa.Column("user_id", key_type, nullable=False),
        sa.Column("sid_hash", sa.String(length=64), nullable=False),
        when("created_at"), when("last_seen_at"),
        sa.Column("ip", sa.String(length=64), nullable=False),
        sa.Column("user_agent", sa.String(length=300), nullable=False),
        when("revoked_at", nullable=True), when("mfa_at", nullable=True),
        fk(table, "user_id", users, "CASCADE"), pk(table), uq(table, "sid_hash"))
    op.create_index("ix_rbac_session_user_id", table, ["user_id"])
    table = "rbac_sign_in_throttle"
    op.create_table(
        table, int_column("id"),
        sa.Column("key", sa.String(length=128), nullable=False),
        int_column("failures"), when("first_failure_at"), when("last_failure_at"),
        when("blocked_until", nullable=True),
        pk(table), uq(table, "key"))
