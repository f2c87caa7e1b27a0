"""Whether a role lets its members sign in: rbac_role.sign_in

The same change as the plugin's ``rbac_0014`` revision, in the demo's own
history: it runs that revision's upgrade and downgrade.

Revision ID: 0015_role_sign_in
Revises: 0014_more_ids_never_reused
Create Date: 2026-12-07 15:50:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0015_role_sign_in'
down_revision = '0014_more_ids_never_reused'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0014_role_sign_in")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
