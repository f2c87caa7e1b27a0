"""The built-in Admin and Finance & Accounting roles of existing workspaces read the
plan: ``billing.view``.

Revision ID: rbac_0019
Revises: rbac_0018
Create Date: 2026-12-08

New workspaces' Admin and Finance & Accounting roles get ``billing.view`` from the
role templates (:data:`crm_rbac_plugin.defaults.BILLING_RESOURCE`, view only); this
gives the same grant to those roles made before the resource existed (their
template's grant was skipped then, as on any unregistered resource). The demo's own history
runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0019"
down_revision = "rbac_0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(sa.text(
        "INSERT INTO rbac_grant (role_id, resource, action, scope, effect) "
        "SELECT r.id, 'billing', 'view', 'all', 'allow' FROM rbac_role r "
        "WHERE r.builtin AND r.key IN ('admin', 'finance_accounting') "
        "AND NOT EXISTS (SELECT 1 FROM rbac_grant g "
        "WHERE g.role_id = r.id AND g.resource = 'billing' AND g.action = 'view' "
        "AND g.effect = 'allow')"))


def downgrade() -> None:
    op.execute(sa.text("DELETE FROM rbac_grant WHERE resource = 'billing'"))
