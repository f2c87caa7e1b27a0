"""Anomaly alerts: thresholds, alerts, counters, seen addresses; the workspace's time zone

The same change as the plugin's ``rbac_0005`` revision (see
``crm_rbac_plugin.models.alerts``), in the demo's own history: it runs that
revision's upgrade and downgrade.

Revision ID: 5a1e2f0c0005
Revises: 5b1e0a9c2d47
Create Date: 2026-12-05 11:40:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '5a1e2f0c0005'
down_revision = '5b1e0a9c2d47'
branch_labels = None
depends_on = None

_plugin = importlib.import_module("crm_rbac_plugin.migrations.versions.rbac_0005_alerts")


def upgrade():
    _plugin.upgrade()


def downgrade():
    _plugin.downgrade()
