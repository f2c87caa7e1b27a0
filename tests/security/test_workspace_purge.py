"""The purge of a deleted workspace against the security world, which holds rows of
every kind (tokens, invitations, agreements, approvals, alerts, certification runs,
notifications, host records): on SQLite and on PostgreSQL with its foreign keys, the
purge leaves no row of the workspace and changes nothing of the other one."""

from __future__ import annotations

import datetime as dt
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import lifecycle
from crm_rbac_plugin.roles import editing as rbac_roles
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


def test_a_workspace_made_after_a_purge_never_reads_the_purged_ones_trail(
        world: SimpleNamespace, login: Any) -> None:
    """On SQLite too, the purged workspace's ids (workspace, members, roles) are
    never given again, so its audit events stay out of a later tenant's trail;
    its alert counters, which have no foreign key, go with it."""
    m = rbac.models
    gone = world.ws2
    gone_id, outsider = gone.id, world.users["outsider"]
    assert gone_id == max(db.session.scalars(sa.select(m.Workspace.id)))
    dual = access_of(db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == gone_id, m.Membership.user_id == world.users["dual"].id)))
    rbac_roles.create_role(rbac, dual, name="Secret Project Phoenix", description="phoenix plans")
    db.session.add(m.AlertCounter(workspace_id=gone_id, membership_id=dual.membership_id,
                                  rule="exports", window_start=T0, count=3))
    db.session.commit()
    old_members = set(db.session.scalars(sa.select(m.Membership.id).where(
        m.Membership.workspace_id == gone_id)))
    old_roles = set(db.session.scalars(sa.select(m.Role.id).where(m.Role.workspace_id == gone_id)))
    lifecycle.delete_workspace(rbac, dual, gone.name, now=T0)
    db.session.commit()
    lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=400))
    assert not db.session.scalar(sa.select(sa.func.count()).select_from(m.AlertCounter).where(
        m.AlertCounter.workspace_id == gone_id))

    client = login(db.session.merge(outsider))
    made = client.post("/api/v1/workspaces", json={"name": "Member Side Project"})
    assert made.status_code == 201, made.text[:300]
    new_id = made.json["id"]
    assert new_id != gone_id
    assert not old_members & set(db.session.scalars(sa.select(m.Membership.id).where(
        m.Membership.workspace_id == new_id)))
    assert not old_roles & set(db.session.scalars(sa.select(m.Role.id).where(
        m.Role.workspace_id == new_id)))
    trail = client.get("/api/v1/audit")
    assert trail.status_code == 200
    assert trail.json["items"] and all(e["action"] != "workspace.purged" for e in trail.json["items"])
    assert "Phoenix" not in trail.text and "Beta Education" not in trail.text
    page = client.get("/settings/audit")
    assert page.status_code == 200 and "Phoenix" not in page.text


#: The tables whose ids the audit trail or a URL names besides the tenancy tables
#: (migration rbac_0013), children before parents so that a copied child still has
#: its parent.
NAMED_BY_ID = ("rbac_certification_item", "rbac_certification_run", "rbac_sharing_agreement",
               "rbac_invitation", "rbac_approval_request", "rbac_alert", "rbac_notification",
               "rbac_attachment", "rbac_role_conflict")


def ids_of(conn: sa.Connection, table: sa.Table, workspace_id: int) -> set[int]:
    """The ids of ``table``'s rows in the workspace (an agreement by its granting side, a
    review item through its run)."""
    if "workspace_id" in table.c:
        where = table.c.workspace_id == workspace_id
    elif "granting_workspace_id" in table.c:
        where = table.c.granting_workspace_id == workspace_id
    else:
        runs = db.metadata.tables["rbac_certification_run"]
        where = table.c.run_id.in_(sa.select(runs.c.id).where(runs.c.workspace_id == workspace_id))
    return set(conn.scalars(sa.select(table.c.id).where(where)))


def give_a_new_id(conn: sa.Connection, table: sa.Table, source: int) -> int:
    """Replace row ``source`` by a copy of itself and return the id the database gives it
    (the original goes first so its unique values are free for the copy)."""
    row = dict(conn.execute(sa.select(table).where(table.c.id == source)).mappings().one())
    del row["id"]
    conn.execute(sa.delete(table).where(table.c.id == source))
    return int(conn.execute(sa.insert(table).values(row)).inserted_primary_key[0])


def test_a_purged_workspaces_agreements_invitations_approvals_alerts_and_reviews_keep_their_ids(
        security_world: SimpleNamespace) -> None:
    """After a purge, a new sharing agreement, invitation, approval request, alert, access
    review (and item), notification, attachment or role conflict never takes an id the
    purged workspace had, on SQLite too: its audit events and links name those ids."""
    w = security_world
    gone, kept = w.ws2.id, w.ws.id
    tables = [db.metadata.tables[name] for name in NAMED_BY_ID]
    with db.engine.connect() as conn:
        purged = {t.name: ids_of(conn, t, gone) for t in tables}
        highest = {t.name: conn.scalar(sa.select(sa.func.max(t.c.id))) for t in tables}
    assert all(purged.values()), purged
    lifecycle.delete_workspace(rbac, access_of(w.ms2["dual"]), w.ws2.name, now=T0)
    db.session.commit()
    assert [d[0] for d in lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=30))] == [gone]
    reused = {}
    with db.engine.begin() as conn:
        for table in tables:
            assert not ids_of(conn, table, gone)
            new_id = give_a_new_id(conn, table, min(ids_of(conn, table, kept)))
            if new_id in purged[table.name] or new_id <= highest[table.name]:
                reused[table.name] = new_id
    assert not reused, f"ids given again after the purge: {reused}"
