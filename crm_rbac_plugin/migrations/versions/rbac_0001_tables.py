"""The plugin's tables: workspaces, roles, memberships, tokens, sharing, audit, invitations.

Revision ID: rbac_0001
Revises:
Create Date: 2026-11-26

Starts the ``rbac`` branch. Columns holding a user's key take the type of
the host's user key and point at its table (see
:func:`crm_rbac_plugin.migrations.user_key`), so this revision runs after
the host's user table exists.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

from crm_rbac_plugin.migrations import require_user_table, user_key

revision = "rbac_0001"
down_revision = None
branch_labels = ("rbac",)
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_audit_event", "rbac_workspace", "rbac_department", "rbac_role", "rbac_grant",
          "rbac_field_rule", "rbac_role_conflict", "rbac_membership", "rbac_manager_assignment",
          "rbac_member_role", "rbac_api_token", "rbac_invitation", "rbac_sharing_agreement",
          "rbac_sharing_permission")


def fk(table: str, column: str, target: str, ondelete: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it."""
    return sa.ForeignKeyConstraint([column], [target], ondelete=ondelete,
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def pk(table: str, *columns: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint(*columns, name=f"pk_{table}")


def uq(table: str, *columns: str) -> sa.UniqueConstraint:
    return sa.UniqueConstraint(*columns, name=f"uq_{table}_{columns[0]}")


def ids(*names: str) -> list[sa.Column[Any]]:
    """Non-null integer columns: the id and the keys of the plugin's own rows."""
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    key = user_key()
    require_user_table(op.get_bind(), key.table.name)
    create_workspace_tables(key)
    create_role_tables()
    create_membership_tables(key)
    create_trail_tables()
    create_sharing_tables(key)


def downgrade() -> None:
    for table in reversed(TABLES):
        op.drop_table(table)


def create_workspace_tables(key: Any) -> None:
    op.create_table(
        "rbac_audit_event", *ids("id"),
        sa.Column("workspace_id", sa.Integer(), nullable=True),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("actor_user_id", key.type, nullable=True),
        sa.Column("actor_membership_id", sa.Integer(), nullable=True),
        sa.Column("action", sa.String(length=60), nullable=False),
        sa.Column("resource", sa.String(length=60), nullable=False),
        sa.Column("target", sa.Text(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("detail", sa.JSON(), nullable=True),
        sa.Column("ip", sa.String(length=64), nullable=True),
        pk("rbac_audit_event", "id"))
    op.create_index("ix_rbac_audit_event_ws_action", "rbac_audit_event", ["workspace_id", "action"])
    op.create_index("ix_rbac_audit_event_ws_at", "rbac_audit_event", ["workspace_id", "at"])
    op.create_table(
        "rbac_workspace", *ids("id"),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("slug", sa.String(length=120), nullable=False),
        sa.Column("plan", sa.String(length=40), nullable=False),
        sa.Column("policy_version", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        pk("rbac_workspace", "id"), uq("rbac_workspace", "slug"))
    op.create_table(
        "rbac_department", *ids("id", "workspace_id"),
        sa.Column("name", sa.String(length=120), nullable=False),
        fk("rbac_department", "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_department", "id"), uq("rbac_department", "workspace_id", "name"))
    op.create_index("ix_rbac_department_workspace_id", "rbac_department", ["workspace_id"])


def create_role_tables() -> None:
    op.create_table(
        "rbac_role", *ids("id", "workspace_id"),
        sa.Column("key", sa.String(length=40), nullable=True),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("builtin", sa.Boolean(), nullable=False),
        sa.Column("is_owner", sa.Boolean(), nullable=False),
        sa.Column("parent_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        fk("rbac_role", "parent_id", "rbac_role.id", "SET NULL"),
        fk("rbac_role", "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_role", "id"), uq("rbac_role", "workspace_id", "name"))
    op.create_index("ix_rbac_role_workspace_id", "rbac_role", ["workspace_id"])
    op.create_table(
        "rbac_grant", *ids("id", "role_id"),
        sa.Column("resource", sa.String(length=60), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("effect", sa.String(length=8), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=True),
        sa.CheckConstraint("effect in ('allow', 'deny')", name="ck_rbac_grant_effect"),
        sa.CheckConstraint("scope in ('own', 'team', 'department', 'all')",
                           name="ck_rbac_grant_scope"),
        fk("rbac_grant", "role_id", "rbac_role.id", "CASCADE"),
        pk("rbac_grant", "id"), uq("rbac_grant", "role_id", "resource", "action", "effect"))
    op.create_table(
        "rbac_field_rule", *ids("id", "role_id"),
        sa.Column("resource", sa.String(length=60), nullable=False),
        sa.Column("field", sa.String(length=60), nullable=False),
        sa.Column("mode", sa.String(length=10), nullable=False),
        sa.CheckConstraint("mode in ('hidden', 'readonly')", name="ck_rbac_field_rule_mode"),
        fk("rbac_field_rule", "role_id", "rbac_role.id", "CASCADE"),
        pk("rbac_field_rule", "id"), uq("rbac_field_rule", "role_id", "resource", "field"))
    op.create_table(
        "rbac_role_conflict", *ids("id", "workspace_id", "role_a_id", "role_b_id"),
        fk("rbac_role_conflict", "role_a_id", "rbac_role.id", "CASCADE"),
        fk("rbac_role_conflict", "role_b_id", "rbac_role.id", "CASCADE"),
        fk("rbac_role_conflict", "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_role_conflict", "id"),
        uq("rbac_role_conflict", "workspace_id", "role_a_id", "role_b_id"))


def create_membership_tables(key: Any) -> None:
    users = f"{key.table.name}.{key.name}"
    op.create_table(
        "rbac_membership", *ids("id", "workspace_id"),
        sa.Column("user_id", key.type, nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("department_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(), nullable=True),
        sa.Column("notify_email", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("visibility", sa.String(length=16), nullable=True),
        fk("rbac_membership", "department_id", "rbac_department.id", "SET NULL"),
        fk("rbac_membership", "user_id", users, "CASCADE"),
        fk("rbac_membership", "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_membership", "id"), uq("rbac_membership", "workspace_id", "user_id"))
    op.create_index("ix_rbac_membership_user_ws", "rbac_membership", ["user_id", "workspace_id"])
    op.create_index("ix_rbac_membership_ws_dept", "rbac_membership",
                    ["workspace_id", "department_id"])
    op.create_table(
        "rbac_manager_assignment", *ids("manager_id", "member_id"),
        fk("rbac_manager_assignment", "manager_id", "rbac_membership.id", "CASCADE"),
        fk("rbac_manager_assignment", "member_id", "rbac_membership.id", "CASCADE"),
        pk("rbac_manager_assignment", "manager_id", "member_id"))
    op.create_index("ix_rbac_manager_assignment_member_id", "rbac_manager_assignment",
                    ["member_id"])
    op.create_table(
        "rbac_member_role", *ids("id", "membership_id", "role_id"),
        sa.Column("starts_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        fk("rbac_member_role", "membership_id", "rbac_membership.id", "CASCADE"),
        fk("rbac_member_role", "role_id", "rbac_role.id", "CASCADE"),
        pk("rbac_member_role", "id"))
    op.create_index("ix_rbac_member_role_membership", "rbac_member_role", ["membership_id"])
    op.create_index("ix_rbac_member_role_role_id", "rbac_member_role", ["role_id"])


def create_trail_tables() -> None:
    op.create_table(
        "rbac_api_token", *ids("id", "membership_id"),
        sa.Column("name", sa.String(length=80), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("prefix", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("last_used_at", sa.DateTime(), nullable=True),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        fk("rbac_api_token", "membership_id", "rbac_membership.id", "CASCADE"),
        pk("rbac_api_token", "id"), uq("rbac_api_token", "token_hash"))
    op.create_index("ix_rbac_api_token_membership_id", "rbac_api_token", ["membership_id"])
    op.create_table(
        "rbac_invitation", *ids("id", "workspace_id"),
        sa.Column("email", sa.String(length=255), nullable=False),
        sa.Column("role_ids", sa.JSON(), nullable=False),
        sa.Column("membership_id", sa.Integer(), nullable=True),
        sa.Column("invited_by_id", sa.Integer(), nullable=True),
        sa.Column("new_user", sa.Boolean(), nullable=False),
        sa.Column("nonce_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("sent_at", sa.DateTime(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=False),
        sa.Column("accepted_at", sa.DateTime(), nullable=True),
        sa.Column("revoked_at", sa.DateTime(), nullable=True),
        fk("rbac_invitation", "invited_by_id", "rbac_membership.id", "SET NULL"),
        fk("rbac_invitation", "membership_id", "rbac_membership.id", "SET NULL"),
        fk("rbac_invitation", "workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_invitation", "id"))
    op.create_index("ix_rbac_invitation_membership_id", "rbac_invitation", ["membership_id"])
    op.create_index("ix_rbac_invitation_ws_email", "rbac_invitation", ["workspace_id", "email"])


def create_sharing_tables(key: Any) -> None:
    op.create_table(
        "rbac_sharing_agreement", *ids("id", "granting_workspace_id", "receiving_workspace_id"),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(), nullable=True),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("created_by_id", key.type, nullable=True),
        sa.Column("decided_at", sa.DateTime(), nullable=True),
        sa.CheckConstraint("granting_workspace_id <> receiving_workspace_id",
                           name="ck_rbac_sharing_agreement_two_workspaces"),
        fk("rbac_sharing_agreement", "created_by_id", f"{key.table.name}.{key.name}", "SET NULL"),
        fk("rbac_sharing_agreement", "granting_workspace_id", "rbac_workspace.id", "CASCADE"),
        fk("rbac_sharing_agreement", "receiving_workspace_id", "rbac_workspace.id", "CASCADE"),
        pk("rbac_sharing_agreement", "id"))
    op.create_index("ix_rbac_sharing_agreement_granting", "rbac_sharing_agreement",
                    ["granting_workspace_id", "status"])
    op.create_index("ix_rbac_sharing_agreement_receiving", "rbac_sharing_agreement",
                    ["receiving_workspace_id", "status"])
    op.create_table(
        "rbac_sharing_permission", *ids("id", "agreement_id"),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("condition", sa.JSON(), nullable=True),
        fk("rbac_sharing_permission", "agreement_id", "rbac_sharing_agreement.id", "CASCADE"),
        pk("rbac_sharing_permission", "id"),
        uq("rbac_sharing_permission", "agreement_id", "resource", "action"))
