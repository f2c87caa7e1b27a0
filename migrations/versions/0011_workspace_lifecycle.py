"""The workspace lifecycle: when a workspace was deleted and when it is purged

The same change as the plugin's ``rbac_0009`` revision (see
``crm_rbac_plugin.lifecycle``), in the demo's own history: it runs that
revision's upgrade and downgrade.

Revision ID: 6d2f0b7a0009
Revises: 7d2b9e41c0a8
Create Date: 2026-12-05 14:40:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '6d2f0b7a0009'
down_revision = '7d2b9e41c0a8'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0009_lifecycle")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
