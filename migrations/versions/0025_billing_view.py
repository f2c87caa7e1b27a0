"""The built-in Admin role reads the plan: billing.view

The same change as the plugin's ``rbac_0019`` revision, in the demo's own
history: it runs that revision's upgrade and downgrade.

Revision ID: 0021_billing_view
Revises: 0020_role_api_access
Create Date: 2026-12-08 01:40:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0021_billing_view'
down_revision = '0020_role_api_access'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0019_billing_view")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
