"""The audit trail's filter indexes: one per filter of the audit page

The same change as the plugin's ``rbac_0011`` revision (see
``crm_rbac_plugin.models.trail``), in the demo's own history: it runs that
revision's upgrade and downgrade.

Revision ID: 5d2a7c11e0b9
Revises: 6d2f0b7a0009
Create Date: 2026-12-05 14:40:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '5d2a7c11e0b9'
down_revision = '6d2f0b7a0009'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0011_audit_index")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
