"""The audit trail's filter indexes: one per filter of the audit page.

Revision ID: rbac_0011
Revises: rbac_0010
Create Date: 2026-12-05

Replaces ``ix_rbac_audit_event_ws_action`` (workspace, action) with
``ix_rbac_audit_event_ws_action_at`` (workspace, action, at, id) and adds the
same for the actor and the resource, so that a filtered page of the audit
trail, newest first, is read in order from one index however rare its
events are (see :mod:`crm_rbac_plugin.models.trail`). The demo's own history
runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

from alembic import op

revision = "rbac_0011"
down_revision = 'rbac_0010'
branch_labels = None
depends_on = None

TABLE = "rbac_audit_event"
#: (filter column, index key), as :data:`crm_rbac_plugin.models.trail.AUDIT_FILTER_INDEXES`.
INDEXES = (("action", "action"), ("actor_membership_id", "actor"), ("resource", "resource"))


def upgrade() -> None:
    op.drop_index(f"ix_{TABLE}_ws_action", table_name=TABLE)
    for column, key in INDEXES:
        op.create_index(f"ix_{TABLE}_ws_{key}_at", TABLE, ["workspace_id", column, "at", "id"])


def downgrade() -> None:
    for _column, key in reversed(INDEXES):
        op.drop_index(f"ix_{TABLE}_ws_{key}_at", table_name=TABLE)
    op.create_index(f"ix_{TABLE}_ws_action", TABLE, ["workspace_id", "action"])
