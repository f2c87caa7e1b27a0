"""The purge of a deleted workspace against the security world, which holds rows of
every kind (tokens, invitations, agreements, approvals, alerts, certification runs,
notifications, host records): on SQLite and on PostgreSQL with its foreign keys, the
purge leaves no row of the workspace and changes nothing of the other one."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import lifecycle
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401  (autouse fixture)

T0 = dt.datetime(2030, 1, 1, 12, 0)
#: Tables whose rows of the other workspace the deletion itself adds to (it tells them).
TOLD = {"rbac_notification"}


def counts(workspace_id: int) -> dict[str, int]:
    """Rows per table that carry ``workspace_id`` (the audit trail aside)."""
    out = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            column = table.c.get("workspace_id")
            if column is None or table.name == "rbac_audit_event":
                continue
            out[table.name] = conn.execute(sa.select(sa.func.count()).select_from(table)
                                           .where(column == workspace_id)).scalar_one()
    return out


def test_the_purge_removes_every_row_of_the_workspace_and_only_those(
        security_world: SimpleNamespace) -> None:
    w = security_world
    ws_id, ws2_id = w.ws.id, w.ws2.id
    mine, theirs = counts(ws_id), counts(ws2_id)
    assert mine["lead"] and mine["rbac_membership"] and mine["rbac_invitation"]
    lifecycle.delete_workspace(rbac, access_of(w.members["owner"]), w.ws.name, now=T0)
    db.session.commit()
    done = lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=30))
    assert [d[0] for d in done] == [ws_id]
    assert set(counts(ws_id).values()) == {0}
    after = counts(ws2_id)
    assert {k: v for k, v in after.items() if k not in TOLD} == {
        k: v for k, v in theirs.items() if k not in TOLD}
    with db.engine.connect() as conn:
        W = rbac.models.Workspace.__table__
        ids = set(conn.execute(sa.select(W.c.id)).scalars())
        assert ws_id not in ids and ws2_id in ids
        A = rbac.models.AuditEvent.__table__
        assert conn.execute(sa.select(sa.func.count()).select_from(A)
                            .where(A.c.workspace_id == ws_id)).scalar_one() > 0
