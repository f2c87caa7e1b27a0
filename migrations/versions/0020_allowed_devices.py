"""Device management: the device types a workspace's security policy allows

The same change as the plugin's ``rbac_0015`` revision (see
``crm_rbac_plugin.security.devices``), in the demo's own history: it runs
that revision's upgrade and downgrade.

Revision ID: 0016_allowed_devices
Revises: 0015_role_sign_in
Create Date: 2026-12-07 15:30:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0016_allowed_devices'
down_revision = '0015_role_sign_in'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0015_allowed_devices")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
