"""The address each approval vote came from: ``rbac_approval_decision.address``.

Revision ID: rbac_0017
Revises: rbac_0016
Create Date: 2026-12-07

A vote is judged at the time and from the address it was cast: when a
second approval completes a request, the earlier approver's roles (their
weekday, hour and network conditions included) are evaluated at their own
vote's ``at`` and ``address``, never against the second approver's request
(see :func:`crm_rbac_plugin.approvals.decisions.approve`). Votes cast before
this revision have no address, so a network-bound approver's earlier vote
counts only once they vote again (fail closed). The demo's own history runs
the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0017"
down_revision = "rbac_0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("rbac_approval_decision", sa.Column("address", sa.String(64), nullable=True))


def downgrade() -> None:
    # The table is not AUTOINCREMENT (``rbac_0012`` names those), so the batch
    # rebuild SQLite needs to drop a column declares none.
    with op.batch_alter_table("rbac_approval_decision") as batch:
        batch.drop_column("address")
