"""Ids that SQLite never hands out again: the tables the audit trail names.

Revision ID: rbac_0012
Revises: rbac_0011
Create Date: 2026-12-06

The audit trail outlives a purged workspace and names its workspace, members,
roles, departments, assignments and tokens by id. SQLite gives a new row
``max(id) + 1`` unless the table is declared ``AUTOINCREMENT``, so once the
highest rows are purged the next tenant would get the same ids and read the
purged tenant's events as its own. This revision rebuilds those tables with
``AUTOINCREMENT`` on SQLite (:data:`crm_rbac_plugin.models.base.NEVER_REUSED`).
PostgreSQL's sequences never reuse a value: nothing changes there.

The rebuild drops each old table, which with ``PRAGMA foreign_keys=ON`` would
run the tables' ``ON DELETE CASCADE`` on every row referring to them, so the
revision turns foreign keys off for its run (checking they are off, as the
pragma is ignored inside a transaction), checks them with
``PRAGMA foreign_key_check`` afterwards and turns them back on. The demo's
own history runs the same :func:`upgrade` and :func:`downgrade`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from alembic import op

revision = "rbac_0012"
down_revision = "rbac_0011"
branch_labels = None
depends_on = None

#: Parents before children, as :data:`..models.base.NEVER_REUSED` marks them.
TABLES = ("rbac_workspace", "rbac_department", "rbac_role", "rbac_membership",
          "rbac_member_role", "rbac_api_token")


@contextmanager
def _foreign_keys_off(revision_id: str) -> Iterator[None]:
    """Run the block with SQLite's foreign keys off, and check them after it."""
    bind = op.get_bind()
    was_on = bool(bind.exec_driver_sql("PRAGMA foreign_keys").scalar())
    if was_on:
        bind.exec_driver_sql("PRAGMA foreign_keys=OFF")
        if bind.exec_driver_sql("PRAGMA foreign_keys").scalar():
            raise RuntimeError(f"{revision_id} needs SQLite's foreign keys off to rebuild its "
                               "tables without cascading deletes; run it in its own transaction")
    yield
    broken = bind.exec_driver_sql("PRAGMA foreign_key_check").fetchall()
    if broken:
        raise RuntimeError(f"{revision_id} left foreign keys that point nowhere: {broken[:5]}")
    if was_on:
        bind.exec_driver_sql("PRAGMA foreign_keys=ON")


def rebuild(tables: tuple[str, ...], autoincrement: bool, revision_id: str) -> None:
    """Rebuild ``tables`` on SQLite with or without ``AUTOINCREMENT`` (elsewhere: nothing).

    ``rbac_0013`` rebuilds its own tables with this.
    """
    if op.get_bind().dialect.name != "sqlite":
        return
    with _foreign_keys_off(revision_id):
        for table in tables:
            with op.batch_alter_table(table, recreate="always",
                                      table_kwargs={"sqlite_autoincrement": autoincrement}):
                pass


def upgrade() -> None:
    rebuild(TABLES, True, revision)


def downgrade() -> None:
    rebuild(TABLES, False, revision)
