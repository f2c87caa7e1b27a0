"""Ids that SQLite never hands out again: the other tables the trail or a URL names.

Revision ID: rbac_0013
Revises: rbac_0012
Create Date: 2026-12-06

Audit events and links (``/sharing/<id>``, an invitation's token, an approval
request, an alert, an access review and its items, a notification, an
attachment, a role conflict) name these tables' rows by id and outlive a
purged workspace. SQLite gives a new row ``max(id) + 1`` unless the table is
declared ``AUTOINCREMENT``, so once the highest rows are purged the next
tenant's rows would take the same ids. This revision rebuilds the tables with
``AUTOINCREMENT`` on SQLite (:data:`crm_rbac_plugin.models.base.NEVER_REUSED`),
with foreign keys off and checked after it, as ``rbac_0012`` does.
PostgreSQL's sequences never reuse a value: nothing changes there. The demo's
own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import importlib

revision = "rbac_0013"
down_revision = "rbac_0012"
branch_labels = None
depends_on = None

#: Parents before children, as :data:`..models.base.NEVER_REUSED` marks them.
TABLES = ("rbac_sharing_agreement", "rbac_role_conflict", "rbac_invitation",
          "rbac_approval_request", "rbac_alert", "rbac_certification_run",
          "rbac_certification_item", "rbac_notification", "rbac_attachment")

_rbac_0012 = importlib.import_module(
    "crm_rbac_plugin.migrations.versions.rbac_0012_ids_never_reused")


def upgrade() -> None:
    _rbac_0012.rebuild(TABLES, True, revision)


def downgrade() -> None:
    _rbac_0012.rebuild(TABLES, False, revision)
