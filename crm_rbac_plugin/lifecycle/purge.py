"""Purging the workspaces whose grace period is over: ``flask rbac workspaces purge``.

One transaction per workspace, in this order:

1. ``workspace_purging`` is sent (with the purge's session) before any row is
   deleted, so a host removes what it keeps outside the database and its
   own rows that point at the workspace's; a receiver that raises aborts
   this workspace's purge, which then changes nothing.
2. The host's workspace-scoped records: every protected model of the
   registry that has a workspace column, children before parents (the
   metadata's dependency order), so foreign keys between them hold on
   PostgreSQL.
3. The plugin's rows that carry the workspace's id, children before parents;
   the rows below them (grants, assignments, tokens ...) go with them by
   their ``ON DELETE CASCADE``; the alert counters, which have no foreign
   key, by their ``workspace_id``. The audit trail is kept: it has no foreign
   keys and outlives the workspaces it names (a ``workspace.purged`` event
   is added to it); on SQLite the ids it names are never given to another
   row (:data:`..models.base.NEVER_REUSED`), so a later workspace never reads
   the purged one's events as its own.
4. The workspace row.

The statements run in the system context with the filter bypassed: the
purge is trusted maintenance and must reach every row.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import signals
from ..audit.events import record
from ..guard import POLICY_WORKSPACES
from ..loader import BYPASS
from ..models import naive_utc, utcnow
from .deletion import _send

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def due_for_purge(rbac: RBACProtocol, now: dt.datetime | None = None) -> list[Any]:
    """The deleted workspaces whose grace period is over at ``now``, oldest first."""
    W = rbac.models.Workspace
    at = naive_utc(now) if now is not None else utcnow()
    return list(rbac.db.session.scalars(
        sa.select(W).where(W.deleted_at.is_not(None), W.purge_after <= at).order_by(W.id),
        execution_options=BYPASS))


def _ordered_tables(rbac: RBACProtocol) -> tuple[list[tuple[sa.Table, sa.Column[Any]]],
                                                  list[tuple[sa.Table, sa.Column[Any]]]]:
    """(host tables, plugin tables) to delete from, each children first, with the
    column holding the workspace id.

    The plugin's tables are those whose ``workspace_id`` refers to the
    workspace, and those whose ``workspace_id`` has no foreign key (the alert
    counters), but the audit trail, which outlives the workspace."""
    workspace_table = rbac.models.Workspace.__table__
    kept = rbac.models.AuditEvent.__table__
    host: dict[str, sa.Column[Any]] = {}
    for res in rbac.registry:
        if res.model is not None and res.workspace_column is not None:
            column = res.model.__table__.c[res.workspace_column]
            host[res.model.__table__.fullname] = column
    plugin: dict[str, sa.Column[Any]] = {}
    for table in rbac.db.metadata.sorted_tables:
        column = table.c.get("workspace_id")
        if (table.fullname not in host and column is not None and table is not kept
                and (not column.foreign_keys
                     or any(fk.column.table is workspace_table for fk in column.foreign_keys))):
            plugin[table.fullname] = column
    order = list(reversed(rbac.db.metadata.sorted_tables))
    return ([(t, host[t.fullname]) for t in order if t.fullname in host],
            [(t, plugin[t.fullname]) for t in order if t.fullname in plugin])


def _policy_workspaces(rbac: RBACProtocol, ws_id: int) -> tuple[int, ...]:
    """The workspaces whose access the purge changes: the purged one and the other
    side of each of its sharing agreements. Named to the bulk deletes
    (:data:`..guard.POLICY_WORKSPACES`), so that the purge bumps their
    ``policy_version`` only, and holds no other workspace's row until it commits."""
    SA = rbac.models.SharingAgreement
    rows = rbac.db.session.execute(
        sa.select(SA.granting_workspace_id, SA.receiving_workspace_id).where(
            sa.or_(SA.granting_workspace_id == ws_id, SA.receiving_workspace_id == ws_id)),
        execution_options=BYPASS)
    return tuple(sorted({ws_id, *(w for row in rows for w in row)}))


def purge_workspace(rbac: RBACProtocol, workspace: Any) -> dict[str, int]:
    """Delete ``workspace`` and every row it holds; return the rows deleted per table.

    The caller commits (or rolls back: nothing is then deleted).
    """
    session = rbac.db.session
    ws_id, name = workspace.id, workspace.name
    counts: dict[str, int] = {}
    with rbac.system():
        _send(signals.workspace_purging, workspace_id=ws_id, session=session)
        options = {**BYPASS, POLICY_WORKSPACES: _policy_workspaces(rbac, ws_id)}
        host, plugin = _ordered_tables(rbac)
        for table, column in (*host, *plugin):
            result = session.execute(sa.delete(table).where(column == ws_id),
                                     execution_options=options)
            if result.rowcount:
                counts[table.fullname] = result.rowcount
        W = rbac.models.Workspace.__table__
        session.execute(sa.delete(W).where(W.c.id == ws_id), execution_options=options)
        session.expunge_all()
        record(rbac, "workspace.purged", workspace_id=ws_id, resource="settings", target=name,
               actor_ids=(None, None), rows=counts)
        session.flush()
    return counts


def purge_due(rbac: RBACProtocol, now: dt.datetime | None = None, *,
              on_purged: Callable[[tuple[int, str, int]], Any] | None = None,
              ) -> list[tuple[int, str, int]]:
    """Purge every workspace whose grace period is over, each in its own transaction.

    Returns ``(id, name, rows deleted)`` per purged workspace, each also
    given to ``on_purged`` once committed. A workspace
    whose purge fails (a ``workspace_purging`` receiver raised, a host row
    that still points at it) is rolled back and the error raised: the ones
    before it stay purged.
    """
    done = []
    with rbac.system():
        due = [(ws.id, ws.name) for ws in due_for_purge(rbac, now)]
    for ws_id, name in due:
        with rbac.system():
            ws = rbac.db.session.get(rbac.models.Workspace, ws_id)
            try:
                counts = purge_workspace(rbac, ws)
                rbac.db.session.commit()
            except Exception:
                rbac.db.session.rollback()
                raise
        done.append((ws_id, name, sum(counts.values())))
        if on_purged is not None:
            on_purged(done[-1])
    return done
