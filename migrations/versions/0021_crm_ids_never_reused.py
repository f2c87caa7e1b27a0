"""Ids that SQLite never hands out again: the CRM's own records

The audit trail names CRM records by id (a file "on clients #467", a refused
attempt, a change to shared records) and so do their URLs. SQLite gives a
new row ``max(id) + 1`` unless the table is declared ``AUTOINCREMENT``, so
once the newest record is deleted the next one would take its id and the
trail would name it. This revision rebuilds the CRM's tables with
``AUTOINCREMENT`` on SQLite, as the models declare them
(``crm_app.models.WorkspaceRecord``), with the plugin's ``rbac_0012``
rebuild: foreign keys off for the run and checked after it. PostgreSQL's
sequences never reuse a value: nothing changes there.

Revision ID: 0017_crm_ids_never_reused
Revises: 0016_allowed_devices
Create Date: 2026-12-07 16:00:00.000000

"""
import importlib

# revision identifiers, used by Alembic.
revision = '0017_crm_ids_never_reused'
down_revision = '0016_allowed_devices'
branch_labels = None
depends_on = None

#: Parents before children: invoices point at clients and deals.
TABLES = ("client", "lead", "deal", "task", "note", "invoice", "campaign")

_rbac_0012 = importlib.import_module(
    "crm_rbac_plugin.migrations.versions.rbac_0012_ids_never_reused")


def upgrade():
    _rbac_0012.rebuild(TABLES, True, revision)


def downgrade():
    _rbac_0012.rebuild(TABLES, False, revision)
