"""The address each approval vote came from: rbac_approval_decision.address

The same change as the plugin's ``rbac_0017`` revision, in the demo's own
history: it runs that revision's upgrade and downgrade.

Revision ID: 0019_approval_vote_address
Revises: 0018_profile_pictures
Create Date: 2026-12-07 16:20:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0019_approval_vote_address'
down_revision = '0018_profile_pictures'
branch_labels = None
depends_on = None

_plugin = importlib.import_module(
    "crm_rbac_plugin.migrations.versions.rbac_0017_approval_vote_address")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
