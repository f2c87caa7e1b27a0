"""Whether a role lets its members use the JSON API: rbac_role.api_access

The same change as the plugin's ``rbac_0018`` revision, in the demo's own
history: it runs that revision's upgrade and downgrade.

Revision ID: 0020_role_api_access
Revises: 0019_approval_vote_address
Create Date: 2026-12-07 19:20:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0020_role_api_access'
down_revision = '0019_approval_vote_address'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0018_role_api_access")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
