"""Ids that SQLite never hands out again: the other tables the trail or a URL names

The same change as the plugin's ``rbac_0013`` revision (see
``crm_rbac_plugin.models.base.NEVER_REUSED``), in the demo's own history: it
runs that revision's upgrade and downgrade.

Revision ID: 0014_more_ids_never_reused
Revises: 0013_ids_never_reused
Create Date: 2026-12-06 13:30:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0014_more_ids_never_reused'
down_revision = '0013_ids_never_reused'
branch_labels = None
depends_on = None

_plugin = importlib.import_module(
    "crm_rbac_plugin.migrations.versions.rbac_0013_more_ids_never_reused")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
