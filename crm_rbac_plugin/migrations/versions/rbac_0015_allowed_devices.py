"""Device management: the device types a workspace's security policy allows.

Revision ID: rbac_0015
Revises: rbac_0014
Create Date: 2026-12-07

Adds ``rbac_security_policy.allowed_devices`` (the types joined by commas,
see :mod:`crm_rbac_plugin.security.devices`). Existing rows get every type
through the server default, so no workspace changes behaviour. The demo's
own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "rbac_0015"
down_revision = "rbac_0014"
branch_labels = None
depends_on = None

TABLE = "rbac_security_policy"
#: Every device type, as :data:`crm_rbac_plugin.models.security.ALL_DEVICES` stores it.
ALL_DEVICES = "desktop,mobile,tablet"


def upgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.add_column(sa.Column("allowed_devices", sa.String(length=40), nullable=False,
                                   server_default=ALL_DEVICES))


def downgrade() -> None:
    with op.batch_alter_table(TABLE) as batch:
        batch.drop_column("allowed_devices")
