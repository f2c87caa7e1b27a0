"""Profile pictures: the rbac_profile_picture table

The same table as the plugin's ``rbac_0016`` revision (see
``crm_rbac_plugin.models.pictures``), in the demo's own history: it runs
that revision's upgrade and downgrade.

Revision ID: 0018_profile_pictures
Revises: 0017_crm_ids_never_reused
Create Date: 2026-12-07 15:30:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0018_profile_pictures'
down_revision = '0017_crm_ids_never_reused'
branch_labels = None
depends_on = None

_plugin = importlib.import_module(
    "crm_rbac_plugin.migrations.versions.rbac_0016_profile_pictures")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
