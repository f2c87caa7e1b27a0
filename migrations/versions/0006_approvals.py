"""Approval workflows: approval policies, requests and decisions

The same tables as the plugin's ``rbac_0004`` revision (see
``crm_rbac_plugin.models.approvals``), in the demo's own history.

Revision ID: 5b1e0a9c2d47
Revises: 5b0e6c1f2a93
Create Date: 2026-12-05 11:20:00.000000

"""
from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

# revision identifiers, used by Alembic.
revision = '5b1e0a9c2d47'
down_revision = '5b0e6c1f2a93'
branch_labels = None
depends_on = None

#: Creation order; downgrade drops them in reverse.
TABLES = ("rbac_approval_policy", "rbac_approval_request", "rbac_approval_decision")


def fk(table: str, column: str, target: str) -> sa.ForeignKeyConstraint:
    """A named foreign key, as the models name it (every one cascades)."""
    return sa.ForeignKeyConstraint([column], [target], ondelete="CASCADE",
                                   name=f"fk_{table}_{column}_{target.split('.')[0]}")


def pk(table: str) -> sa.PrimaryKeyConstraint:
    return sa.PrimaryKeyConstraint("id", name=f"pk_{table}")


def integer(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.Integer(), nullable=nullable)


def when(name: str, *, nullable: bool = False) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(), nullable=nullable)


def text(name: str, length: int | None = None) -> sa.Column[Any]:
    return sa.Column(name, sa.String(length=length) if length else sa.Text(), nullable=False)


def upgrade() -> None:
    table = "rbac_approval_policy"
    op.create_table(
        table, integer("id"), integer("workspace_id"),
        sa.Column("operations", sa.JSON(), nullable=False), integer("approvals_required"),
        text("approver_permission", 100), integer("expiry_hours"), when("updated_at"),
        integer("updated_by_membership_id", nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id"), pk(table),
        sa.UniqueConstraint("workspace_id", name=f"uq_{table}_workspace_id"))
    table = "rbac_approval_request"
    op.create_table(
        table, integer("id"), integer("workspace_id"), integer("requester_id"),
        text("operation", 40), sa.Column("payload", sa.JSON(), nullable=False),
        text("summary", 300), text("reason"), text("status", 20), integer("approvals_required"),
        text("approver_permission", 100), when("created_at"), when("expires_at"),
        when("decided_at", nullable=True), text("failure"),
        sa.Column("download_hash", sa.String(length=64), nullable=True),
        when("download_expires_at", nullable=True), when("download_used_at", nullable=True),
        text("filename", 200), sa.Column("content", sa.LargeBinary(), nullable=True),
        fk(table, "workspace_id", "rbac_workspace.id"),
        fk(table, "requester_id", "rbac_membership.id"), pk(table),
        sa.UniqueConstraint("download_hash", name=f"uq_{table}_download_hash"))
    op.create_index(f"ix_{table}_workspace_id", table, ["workspace_id", "status"])
    table = "rbac_approval_decision"
    op.create_table(
        table, integer("id"), integer("request_id"), integer("membership_id"),
        text("decision", 10), text("reason"), when("at"),
        fk(table, "request_id", "rbac_approval_request.id"),
        fk(table, "membership_id", "rbac_membership.id"), pk(table),
        sa.UniqueConstraint("request_id", "membership_id", name=f"uq_{table}_request_id"))
    grant_admins()


def grant_admins() -> None:
    """Give the built-in Admin role of existing workspaces what new ones get: approvals.*"""
    for action in ("view", "decide"):
        op.execute(sa.text(
            "INSERT INTO rbac_grant (role_id, resource, action, scope, effect) "
            "SELECT r.id, 'approvals', :action, 'all', 'allow' FROM rbac_role r "
            "WHERE r.builtin AND r.key = 'admin' AND NOT EXISTS (SELECT 1 FROM rbac_grant g "
            "WHERE g.role_id = r.id AND g.resource = 'approvals' AND g.action = :action "
            "AND g.effect = 'allow')").bindparams(action=action))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM rbac_grant WHERE resource = 'approvals'"))
    for table in reversed(TABLES):
        op.drop_table(table)
