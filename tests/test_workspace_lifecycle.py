"""The workspace lifecycle (:mod:`crm_rbac_plugin.lifecycle`): create, transfer
ownership, delete with a grace period, restore, purge, export.

Every test runs on SQLite and PostgreSQL (the ``app`` fixture); the grace
period is checked on a controlled clock (``now=`` and a patched ``utcnow``).
"""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import zipfile
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client, Lead, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import lifecycle, sharing, signals, workspaces
from crm_rbac_plugin.errors import PermissionDenied, RuleConflict, ValidationError
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import access_of, fast_passwords  # noqa: F401  (autouse fixture)

T0 = dt.datetime(2030, 1, 1, 12, 0)


def owner_keys(membership: Any) -> set[str]:
    db.session.refresh(membership)
    return {mr.role.key for mr in membership.member_roles}


def notified(event: str) -> list[Any]:
    N = rbac.models.Notification
    return list(db.session.scalars(sa.select(N).where(N.event == event)))


def audit(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A).where(A.action == action)))


def snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table but the audit trail and notifications."""
    out = {}
    with db.engine.connect() as conn:
        for table in db.metadata.sorted_tables:
            if table.name in ("rbac_audit_event",):
                continue
            out[table.name] = sorted(map(tuple, conn.execute(sa.select(table))), key=repr)
    return out


# -- creating --------------------------------------------------------------------------------


def test_any_user_creates_a_workspace_and_becomes_its_owner(world: SimpleNamespace) -> None:
    user = world.users["viewer"]
    ws = lifecycle.create_for_user(rbac, user, "  Viewer's   Lab ")
    db.session.commit()
    assert ws.name == "Viewer's Lab" and ws.slug == "viewer-s-lab"
    membership = lifecycle.owner_membership(rbac, user, ws.id)
    assert membership is not None and access_of(membership).is_owner
    again = lifecycle.create_for_user(rbac, user, "Viewer's Lab")
    db.session.commit()
    assert again.slug == "viewer-s-lab-2"


@pytest.mark.parametrize("name", ["", "   ", None, 7, "x" * 121])
def test_a_bad_workspace_name_is_refused_naming_the_field(world: SimpleNamespace,
                                                           name: Any) -> None:
    before = snapshot()
    with pytest.raises(ValidationError) as err:
        lifecycle.create_for_user(rbac, world.users["viewer"], name)
    db.session.rollback()
    assert err.value.field == "name"
    assert snapshot() == before


def test_the_create_page_and_api(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["outsider"], world.ws2)
    page = client.get("/settings/workspaces")
    assert page.status_code == 200 and "New workspace" in page.text
    bad = client.post("/settings/workspaces/new", data={"name": "  "})
    assert bad.status_code == 400 and "enter a name" in bad.text
    ok = client.post("/settings/workspaces/new", data={"name": "Outsider Co"})
    assert ok.status_code == 302
    W = rbac.models.Workspace
    ws = db.session.scalar(sa.select(W).where(W.name == "Outsider Co"))
    assert lifecycle.owner_membership(rbac, world.users["outsider"], ws.id) is not None
    # The new workspace is the session's now: the Owner's tab shows.
    assert client.get("/settings/lifecycle").status_code == 200
    api = client.post("/api/v1/workspaces", json={"name": ""})
    assert api.status_code == 400 and api.json["field"] == "name"
    made = client.post("/api/v1/workspaces", json={"name": "Outsider API"})
    assert made.status_code == 201 and made.json["name"] == "Outsider API"
    assert made.json["slug"] == "outsider-api"
    assert client.application.test_client().post(
        "/api/v1/workspaces", json={"name": "Nobody"}).status_code == 401


# -- transferring ownership --------------------------------------------------------------------


def test_transfer_makes_the_member_owner_and_the_owner_admin(world: SimpleNamespace,
                                                              app: Flask) -> None:
    owner, admin = world.members["owner"], world.members["admin"]
    lifecycle.transfer_ownership(rbac, access_of(owner), admin.id, user=world.users["owner"],
                                 password="password")
    db.session.commit()
    assert owner_keys(admin) == {"admin", "owner"}
    assert owner_keys(owner) == {"admin"}
    assert not access_of(owner).is_owner and access_of(admin).is_owner
    [event] = audit("workspace.ownership_transferred")
    assert event.after == {"owner_membership_id": admin.id}
    assert event.actor_membership_id == owner.id
    told = notified("workspace.ownership_transferred")
    assert admin.id in {n.membership_id for n in told}
    assert {n.event for n in db.session.scalars(sa.select(rbac.models.Notification).where(
        rbac.models.Notification.membership_id == admin.id))} >= {"role.assigned"}


def test_transfer_to_a_plain_member_keeps_their_roles(world: SimpleNamespace) -> None:
    owner, member = world.members["owner"], world.members["member"]
    lifecycle.transfer_ownership(rbac, access_of(owner), str(member.id),
                                 user=world.users["owner"], password="password")
    db.session.commit()
    assert owner_keys(member) == {"member", "owner"}


@pytest.mark.parametrize("status", ["pending", "inactive"])
def test_transfer_to_a_pending_or_inactive_member_changes_nothing(world: SimpleNamespace,
                                                                  status: str) -> None:
    target = world.members["manager"]
    with rbac.system():
        target.status = status
        db.session.commit()
    before = snapshot()
    with pytest.raises(ValidationError) as err:
        lifecycle.transfer_ownership(rbac, access_of(world.members["owner"]), target.id,
                                     user=world.users["owner"], password="password")
    db.session.rollback()
    assert err.value.field == "membership_id" and status in err.value.message
    assert snapshot() == before


@pytest.mark.parametrize("case", ["wrong password", "no password", "self", "other workspace",
                                  "unknown", "not an id"])
def test_transfer_refusals_change_nothing(world: SimpleNamespace, case: str) -> None:
    owner = world.members["owner"]
    target: Any = world.members["admin"].id
    password: str | None = "password"
    field = "membership_id"
    if case == "wrong password":
        password, field = "nope", "password"
    elif case == "no password":
        password, field = None, "password"
    elif case == "self":
        target = owner.id
    elif case == "other workspace":
        target = db.session.scalar(sa.select(rbac.models.Membership.id).where(
            rbac.models.Membership.workspace_id == world.ws2.id))
    elif case == "unknown":
        target = 999999
    else:
        target = "abc"
    before = snapshot()
    with pytest.raises(ValidationError) as err:
        lifecycle.transfer_ownership(rbac, access_of(owner), target, user=world.users["owner"],
                                     password=password)
    db.session.rollback()
    assert err.value.field == field
    after = snapshot()
    if field == "password":  # a wrong password counts as a failed sign-in, and only that
        assert len(after.pop("rbac_sign_in_throttle")) > len(before.pop("rbac_sign_in_throttle"))
    assert after == before


def test_only_an_owner_transfers(world: SimpleNamespace) -> None:
    before = snapshot()
    with pytest.raises(PermissionDenied):
        lifecycle.transfer_ownership(rbac, access_of(world.members["admin"]),
                                     world.members["member"].id, user=world.users["admin"],
                                     password="password")
    db.session.rollback()
    assert snapshot() == before


def test_an_owner_with_mfa_needs_a_fresh_check_not_a_password(world: SimpleNamespace) -> None:
    owner = access_of(world.members["owner"])
    with pytest.raises(PermissionDenied) as err:
        lifecycle.transfer_ownership(rbac, owner, world.members["admin"].id,
                                     user=world.users["owner"], password="password",
                                     mfa_enrolled=True, mfa_fresh=False)
    db.session.rollback()
    assert err.value.field == "mfa"
    lifecycle.transfer_ownership(rbac, owner, world.members["admin"].id,
                                 user=world.users["owner"], mfa_enrolled=True, mfa_fresh=True)
    db.session.commit()
    assert "owner" in owner_keys(world.members["admin"])


def test_transfer_page_and_api(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    page = client.get("/settings/lifecycle")
    assert page.status_code == 200 and "Transfer ownership" in page.text
    assert login(world.users["admin"], world.ws).get("/settings/lifecycle").status_code == 403
    wrong = client.post("/settings/lifecycle/transfer",
                        data={"membership_id": world.members["admin"].id, "password": "x"})
    assert wrong.status_code == 400 and "password is not correct" in wrong.text
    admin_client = login(world.users["admin"], world.ws)
    refused = admin_client.post("/api/v1/workspace/transfer",
                                json={"membership_id": world.members["member"].id,
                                      "password": "password"})
    assert refused.status_code == 403
    pending = client.post("/api/v1/workspace/transfer", json={"membership_id": "x",
                                                           "password": "password"})
    assert pending.status_code == 400 and pending.json["field"] == "membership_id"
    done = client.post("/api/v1/workspace/transfer",
                       json={"membership_id": world.members["admin"].id, "password": "password"})
    assert done.status_code == 200, done.text
    assert done.json["owner_membership_id"] == world.members["admin"].id
    assert owner_keys(world.members["owner"]) == {"admin"}


# -- deleting and restoring ----------------------------------------------------------------------


def test_a_wrong_confirmation_changes_nothing(world: SimpleNamespace) -> None:
    before = snapshot()
    for typed in ("acme sales", "Acme", "", None):
        with pytest.raises(ValidationError) as err:
            lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), typed, now=T0)
        db.session.rollback()
        assert err.value.field == "confirm"
    with pytest.raises(PermissionDenied):
        lifecycle.delete_workspace(rbac, access_of(world.members["admin"]), "Acme Sales", now=T0)
    db.session.rollback()
    assert snapshot() == before


def test_deletion_hides_the_workspace_from_everyone(world: SimpleNamespace, login: Any,
                                                    app: Flask) -> None:
    sent: list[dict[str, Any]] = []

    def receiver(sender: Any, **kwargs: Any) -> None:
        sent.append(kwargs)

    signals.workspace_deleted.connect(receiver, app)
    try:
        ws = lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), " Acme Sales ",
                                        now=T0)
        db.session.commit()
    finally:
        signals.workspace_deleted.disconnect(receiver, app)
    assert ws.deleted_at == T0 and ws.purge_after == T0 + dt.timedelta(days=30)
    assert sent[0]["purge_after"] == (T0 + dt.timedelta(days=30)).replace(tzinfo=dt.UTC)
    assert audit("workspace.deleted")[0].workspace_id == world.ws.id
    told = {n.membership_id for n in notified("workspace.deleted")}
    assert world.members["admin"].id in told and world.members["owner"].id not in told
    for key in ("owner", "admin", "viewer"):
        client = login(world.users[key], world.ws)
        assert client.get("/settings/roles").status_code in (302, 403), key
        assert client.get("/api/v1/roles").status_code == 403, key
        assert client.get("/leads/").status_code in (302, 403), key
        assert world.ws.id not in {w.id for w in workspaces.switchable(rbac, world.users[key])}
    # dual is still Owner of Beta: the switcher offers only Beta now.
    assert [w.id for w in workspaces.switchable(rbac, world.users["dual"])] == [world.ws2.id]
    # Only the Owner sees it as restorable.
    assert [w.id for w in lifecycle.restorable_workspaces(rbac, world.users["owner"])] == [
        world.ws.id]
    assert lifecycle.restorable_workspaces(rbac, world.users["admin"]) == []
    page = login(world.users["owner"], world.ws2).get("/settings/workspaces")
    assert "Restore Acme Sales" in page.text
    assert rbac.access_for(world.members["owner"]) is None  # nobody acts in a deleted workspace


def test_sharing_agreements_end_and_both_sides_are_told(world: SimpleNamespace) -> None:
    owner = access_of(world.members["owner"])
    M = rbac.models.Membership
    dual_ws2 = db.session.scalar(sa.select(M).where(M.workspace_id == world.ws2.id,
                                                    M.user_id == world.users["dual"].id))
    outgoing = sharing.create_agreement(rbac, owner, workspace=world.ws2,
                                        permissions=[{"resource": "leads", "action": "view"}])
    incoming = sharing.create_agreement(rbac, access_of(dual_ws2), workspace=world.ws,
                                        permissions=[{"resource": "leads", "action": "view"}])
    db.session.commit()
    sharing.accept(rbac, owner, incoming)
    db.session.commit()
    lifecycle.delete_workspace(rbac, owner, "Acme Sales", now=T0)
    db.session.commit()
    db.session.refresh(outgoing)
    db.session.refresh(incoming)
    assert (outgoing.status, incoming.status) == ("revoked", "left")
    assert {n.workspace_id for n in notified("sharing.revoked")} == {world.ws2.id}
    assert {n.workspace_id for n in notified("sharing.left")} == {world.ws2.id}
    # The deleted side is told too (its Admins, by the deletion's notice).
    assert world.ws.id in {n.workspace_id for n in notified("workspace.deleted")}


def test_restore_within_the_grace_period(world: SimpleNamespace, app: Flask) -> None:
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales", now=T0)
    db.session.commit()
    late = T0 + dt.timedelta(days=30)
    with pytest.raises(RuleConflict):
        lifecycle.restore_workspace(rbac, world.users["owner"], world.ws.id, now=late)
    db.session.rollback()
    for key in ("admin", "outsider", "viewer"):
        with pytest.raises(PermissionDenied):
            lifecycle.restore_workspace(rbac, world.users[key], world.ws.id,
                                        now=T0 + dt.timedelta(days=1))
        db.session.rollback()
    restored: list[Any] = []
    signals.workspace_restored.connect(lambda s, **kw: restored.append(kw), app, weak=False)
    lifecycle.restore_workspace(rbac, world.users["owner"], world.ws.id,
                                now=late - dt.timedelta(seconds=1))
    db.session.commit()
    assert restored and restored[0]["workspace_id"] == world.ws.id
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is None and world.ws.purge_after is None
    assert access_of(world.members["viewer"]).active
    assert audit("workspace.restored")[0].actor_user_id == world.users["owner"].id


def test_restore_page_is_for_the_owners_only(world: SimpleNamespace, login: Any) -> None:
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales")
    db.session.commit()
    for key in ("admin", "outsider"):
        client = login(world.users[key], world.ws2)
        assert client.post("/settings/workspaces/restore",
                           data={"workspace_id": world.ws.id}).status_code == 404
        assert client.post("/api/v1/workspaces/restore",
                           json={"workspace_id": world.ws.id}).status_code == 404
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is not None
    owner = login(world.users["owner"])
    done = owner.post("/settings/workspaces/restore", data={"workspace_id": world.ws.id})
    assert done.status_code == 302
    assert owner.get("/settings/roles").status_code == 200


def test_delete_page_and_api(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    wrong = client.post("/settings/lifecycle/delete", data={"confirm": "Acme"})
    assert wrong.status_code == 400 and "exactly to confirm" in wrong.text
    api_wrong = client.delete("/api/v1/workspace", json={"confirm": "nope"})
    assert api_wrong.status_code == 400 and api_wrong.json["field"] == "confirm"
    assert login(world.users["admin"], world.ws).delete(
        "/api/v1/workspace", json={"confirm": "Acme Sales"}).status_code == 403
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is None
    done = client.post("/settings/lifecycle/delete", data={"confirm": "Acme Sales"})
    assert done.status_code == 302
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is not None


# -- purging ---------------------------------------------------------------------------------------


def test_purge_waits_for_the_grace_period_then_removes_everything(world: SimpleNamespace,
                                                                  app: Flask) -> None:
    ws_id, ws2_id = world.ws.id, world.ws2.id
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales", now=T0)
    db.session.commit()
    assert lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=29, hours=23)) == []
    seen: list[int] = []

    def purging(sender: Any, *, workspace_id: int, session: Any) -> None:
        # Before any row is deleted: the host still finds its records.
        with rbac.system():
            seen.append(session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
                Lead.workspace_id == workspace_id)))

    signals.workspace_purging.connect(purging, app)
    try:
        done = lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=30))
    finally:
        signals.workspace_purging.disconnect(purging, app)
    assert [d[0] for d in done] == [ws_id] and seen and seen[0] > 0
    W, M = rbac.models.Workspace, rbac.models.Membership
    with rbac.system():
        assert db.session.get(W, ws_id) is None
        for model in (Lead, Client, Task):
            assert db.session.scalar(sa.select(sa.func.count()).select_from(model).where(
                model.workspace_id == ws_id)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
            M.workspace_id == ws_id)) == 0
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead).where(
            Lead.workspace_id == ws2_id)) == 1
    assert audit("workspace.purged")[0].workspace_id == ws_id
    assert audit("workspace.deleted")  # the trail outlives the workspace


def test_a_failing_purge_receiver_changes_nothing(world: SimpleNamespace, app: Flask,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales", now=T0)
    db.session.commit()
    before = snapshot()

    def boom(sender: Any, **kwargs: Any) -> None:
        raise RuntimeError("files could not be removed")

    signals.workspace_purging.connect(boom, app)
    try:
        with pytest.raises(RuntimeError):
            lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=31))
        assert snapshot() == before
        monkeypatch.setattr("crm_rbac_plugin.lifecycle.purge.utcnow",
                            lambda: T0 + dt.timedelta(days=31))
        result = app.test_cli_runner().invoke(args=["rbac", "workspaces", "purge"])
    finally:
        signals.workspace_purging.disconnect(boom, app)
    assert result.exit_code == 1 and "files could not be removed" in result.output
    assert snapshot() == before


def test_purge_command_on_a_controlled_clock(world: SimpleNamespace, app: Flask,
                                             monkeypatch: pytest.MonkeyPatch) -> None:
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales", now=T0)
    db.session.commit()
    runner = app.test_cli_runner()
    monkeypatch.setattr("crm_rbac_plugin.lifecycle.purge.utcnow",
                        lambda: T0 + dt.timedelta(days=10))
    result = runner.invoke(args=["rbac", "workspaces", "purge"])
    assert result.exit_code == 0 and "0 workspace(s) purged" in result.output
    monkeypatch.setattr("crm_rbac_plugin.lifecycle.purge.utcnow",
                        lambda: T0 + dt.timedelta(days=30, seconds=1))
    dry = runner.invoke(args=["rbac", "workspaces", "purge", "--dry-run"])
    assert "1 workspace(s) due" in dry.output
    result = runner.invoke(args=["rbac", "workspaces", "purge"])
    assert result.exit_code == 0, result.output
    assert "purged: #" in result.output and "Acme Sales" in result.output
    assert db.session.get(rbac.models.Workspace, world.ws.id) is None


# -- the export --------------------------------------------------------------------------------------


def test_export_is_a_zip_of_json_and_safe_csv(world: SimpleNamespace, login: Any) -> None:
    with rbac.system():
        world.leads["member"].name = "=HYPERLINK(\"http://x\")"
        db.session.commit()
    client = login(world.users["owner"], world.ws)
    assert login(world.users["admin"], world.ws).get(
        "/settings/lifecycle/export").status_code == 403
    response = client.get("/settings/lifecycle/export")
    assert response.status_code == 200 and response.mimetype == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(response.data))
    document = json.loads(archive.read("workspace.json"))
    assert document["workspace"]["name"] == "Acme Sales"
    tables = document["tables"]
    assert {"lead", "client", "rbac_membership", "rbac_role", "rbac_grant",
            "rbac_member_role", "rbac_audit_event"} <= set(tables)
    assert all(row["workspace_id"] == world.ws.id for row in tables["lead"])
    assert not any("hash" in key for rows in tables.values() for row in rows for key in row)
    lead_csv = archive.read("csv/lead.csv").decode()
    assert "'=HYPERLINK" in lead_csv
    [event] = audit("workspace.exported")
    # The event counts the rows; it does not hold them (or each export would hold the last).
    assert event.detail["rows"] == sum(len(rows) for rows in tables.values())
    api = client.get("/api/v1/workspace/export")
    assert api.status_code == 200 and api.mimetype == "application/zip"


def test_export_holds_binary_values_as_base64(world: SimpleNamespace, login: Any) -> None:
    """An approved export keeps its file (bytes) on the request until downloaded:
    the workspace's export carries it as base64 text, in JSON and in CSV."""
    file = b"Name\r\nAda\r\n\x00\xff"
    with rbac.system():
        db.session.add(rbac.models.ApprovalRequest(
            workspace_id=world.ws.id, requester_id=world.members["admin"].id,
            operation="export", summary="Export 1 leads", status="executed",
            expires_at=utcnow() + dt.timedelta(hours=1), filename="leads.csv", content=file))
        db.session.commit()
    client = login(world.users["owner"], world.ws)
    for url in ("/settings/lifecycle/export", "/api/v1/workspace/export"):
        response = client.get(url)
        assert response.status_code == 200, response.text[:300]
        archive = zipfile.ZipFile(io.BytesIO(response.data))
        rows = json.loads(archive.read("workspace.json"))["tables"]["rbac_approval_request"]
        assert [base64.b64decode(r["content"]) for r in rows] == [file]
        assert base64.b64encode(file).decode() in archive.read(
            "csv/rbac_approval_request.csv").decode()


def test_the_workspace_export_waits_for_approval_over_the_threshold(
        world: SimpleNamespace, login: Any) -> None:
    """An Owner's full export is an export like any other for the approval policy: over
    the threshold it waits for another approver, then the Owner downloads it once."""
    from crm_rbac_plugin import approvals
    from tests.rbac_helpers import ask_for_approval

    approvals.save(rbac, access_of(world.members["owner"]), {"operations": {"export": 5}})
    db.session.commit()
    owner, admin = login(world.users["owner"], world.ws), login(world.users["admin"], world.ws)
    api = owner.get("/api/v1/workspace/export", headers={"Accept": "application/json"})
    assert api.status_code == 409 and api.json["status"] == "approval_required"
    asked = ask_for_approval(owner, "/settings/lifecycle/export", "before deleting it")
    assert asked.status_code == 303
    rid = int(asked.headers["Location"].rsplit("/", 1)[1])
    req = db.session.get(rbac.models.ApprovalRequest, rid)
    assert req.operation == "export" and req.payload["via"] == "workspace"
    assert not audit("workspace.exported")
    assert owner.post(f"/settings/approvals/{rid}/approve").status_code == 403  # not oneself
    assert admin.post(f"/settings/approvals/{rid}/approve").status_code == 302
    db.session.expire_all()
    assert db.session.get(rbac.models.ApprovalRequest, rid).status == "executed"
    got = owner.post(f"/settings/approvals/{rid}/download")
    assert got.status_code == 200
    document = json.loads(zipfile.ZipFile(io.BytesIO(got.data)).read("workspace.json"))
    assert document["workspace"]["name"] == "Acme Sales" and document["tables"]["lead"]


def test_now_defaults_to_the_clock(world: SimpleNamespace) -> None:
    ws = lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales")
    assert abs((ws.deleted_at - utcnow()).total_seconds()) < 60


# -- an Owner with two-factor authentication ------------------------------------------------------


def test_an_owner_with_mfa_transfers_only_after_a_fresh_check(world: SimpleNamespace,
                                                               login: Any) -> None:
    from tests.test_mfa import VERIFY_PAGE, enrolled_directly, set_check

    owner_user = world.users["owner"]
    enrolled_directly(owner_user)
    client = login(owner_user, world.ws)
    set_check(client, owner_user, minutes_ago=60)  # signed in with a code, an hour ago
    page = client.get("/settings/lifecycle")
    assert page.status_code == 200 and "fresh code" in page.text
    assert 'name="password"' not in page.text
    body = {"membership_id": world.members["admin"].id, "password": "password"}
    stale = client.post("/settings/lifecycle/transfer", data=body)
    assert stale.status_code == 302 and VERIFY_PAGE in stale.headers["Location"]
    api = client.post("/api/v1/workspace/transfer", json=body)
    assert api.status_code == 403
    assert owner_keys(world.members["owner"]) == {"owner"}
    set_check(client, owner_user, minutes_ago=1)
    done = client.post("/settings/lifecycle/transfer", data={"membership_id":
                                                             world.members["admin"].id})
    assert done.status_code == 302, done.text
    assert owner_keys(world.members["owner"]) == {"admin"}
    assert owner_keys(world.members["admin"]) == {"admin", "owner"}


def test_an_owner_with_mfa_deletes_only_after_a_fresh_check(world: SimpleNamespace,
                                                             login: Any, app: Flask) -> None:
    """The page and the API ask for a recent MFA check; a bearer token never has one."""
    from crm_rbac_plugin import tokens
    from tests.test_mfa import VERIFY_PAGE, enrolled_directly, set_check

    owner_user = world.users["owner"]
    enrolled_directly(owner_user)
    client = login(owner_user, world.ws)
    set_check(client, owner_user, minutes_ago=60)
    stale = client.post("/settings/lifecycle/delete", data={"confirm": "Acme Sales"})
    assert stale.status_code == 302 and VERIFY_PAGE in stale.headers["Location"]
    api = client.delete("/api/v1/workspace", json={"confirm": "Acme Sales"})
    assert api.status_code == 403 and api.json["error"] == "mfa_step_up_required"
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "script")
    db.session.commit()
    by_token = app.test_client().delete("/api/v1/workspace", json={"confirm": "Acme Sales"},
                                        headers={"Authorization": f"Bearer {plaintext}"})
    assert by_token.status_code == 403 and by_token.json["error"] == "mfa_step_up_required"
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is None
    set_check(client, owner_user, minutes_ago=1)
    done = client.delete("/api/v1/workspace", json={"confirm": "Acme Sales"})
    assert done.status_code == 200, done.text
    db.session.refresh(world.ws)
    assert world.ws.deleted_at is not None


def test_a_token_never_transfers_for_an_owner_with_mfa(world: SimpleNamespace,
                                                        app: Flask) -> None:
    from crm_rbac_plugin import tokens
    from tests.test_mfa import enrolled_directly

    enrolled_directly(world.users["owner"])
    _, plaintext = tokens.create_token(rbac, world.members["owner"], "script")
    db.session.commit()
    response = app.test_client().post(
        "/api/v1/workspace/transfer", headers={"Authorization": f"Bearer {plaintext}"},
        json={"membership_id": world.members["admin"].id, "password": "password"})
    assert response.status_code == 403
    assert owner_keys(world.members["owner"]) == {"owner"}


def test_a_token_acts_only_in_its_own_live_workspace(world: SimpleNamespace,
                                                     app: Flask) -> None:
    """A token never creates or restores a workspace (account actions need a session,
    403 ``session_required``), and a token of a deleted workspace is refused everywhere."""
    from crm_rbac_plugin import tokens

    W = rbac.models.Workspace
    dual_in_acme = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == world.ws.id,
        rbac.models.Membership.user_id == world.users["dual"].id))
    _, in_acme = tokens.create_token(rbac, dual_in_acme, "script")
    dual_in_beta = lifecycle.owner_membership(rbac, world.users["dual"], world.ws2.id)
    _, in_beta = tokens.create_token(rbac, dual_in_beta, "beta script")
    db.session.commit()
    anon = app.test_client()

    def bearer(token: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token}"}

    before = db.session.scalar(sa.select(sa.func.count()).select_from(W))
    made = anon.post("/api/v1/workspaces", json={"name": "By Token"}, headers=bearer(in_acme))
    assert made.status_code == 403 and made.json["error"] == "session_required"
    assert db.session.scalar(sa.select(sa.func.count()).select_from(W)) == before
    lifecycle.delete_workspace(rbac, access_of(dual_in_beta), "Beta Education")
    db.session.commit()
    # The Viewer token of Acme cannot restore Beta, which its user owns.
    other = anon.post("/api/v1/workspaces/restore", json={"workspace_id": world.ws2.id},
                      headers=bearer(in_acme))
    assert other.status_code == 403 and other.json["error"] == "session_required"
    # Beta's own token is refused everywhere, restore included.
    for method, path, body in (("get", "/api/v1/records/leads", None),
                               ("post", "/api/v1/workspaces", {"name": "Again"}),
                               ("post", "/api/v1/workspaces/restore",
                                {"workspace_id": world.ws2.id})):
        refused = anon.open(path, method=method.upper(), json=body, headers=bearer(in_beta))
        assert refused.status_code == 401, (path, refused.status_code)
    db.session.expire_all()
    assert db.session.get(W, world.ws2.id).deleted_at is not None
    assert db.session.scalar(sa.select(sa.func.count()).select_from(W)) == before
    assert anon.get("/api/v1/records/leads", headers=bearer(in_acme)).status_code == 200


def test_an_approval_policy_on_privileged_roles_refuses_the_transfer(
        world: SimpleNamespace) -> None:
    from crm_rbac_plugin import approvals

    approvals.save(rbac, access_of(world.members["owner"]),
                   {"operations": {"assign_privileged_role": True}})
    db.session.commit()
    before = snapshot()
    with pytest.raises(RuleConflict) as err:
        lifecycle.transfer_ownership(rbac, access_of(world.members["owner"]),
                                     world.members["admin"].id, user=world.users["owner"],
                                     password="password")
    db.session.rollback()
    assert err.value.status == 409 and err.value.field == "membership_id"
    assert snapshot() == before


@pytest.mark.parametrize("value", [2**31, 2**63, -1, 0, True, 1.5, [1], {"a": 1}])
def test_out_of_range_ids_are_refused_not_a_500(world: SimpleNamespace, login: Any,
                                                value: Any) -> None:
    client = login(world.users["owner"], world.ws)
    transfer = client.post("/api/v1/workspace/transfer",
                           json={"membership_id": value, "password": "password"})
    assert transfer.status_code == 400 and transfer.json["field"] == "membership_id"
    restore = client.post("/api/v1/workspaces/restore", json={"workspace_id": value})
    if isinstance(value, int) and not isinstance(value, bool):
        assert restore.status_code == 404
    else:  # not a JSON integer: a 400 naming the field, as every integer field of the API
        assert restore.status_code == 400 and restore.json["field"] == "workspace_id"
    page = client.post("/settings/workspaces/restore", data={"workspace_id": str(value)})
    assert page.status_code == 404
    assert owner_keys(world.members["owner"]) == {"owner"}


def test_an_invitation_to_a_deleted_workspace_is_no_longer_valid(world: SimpleNamespace,
                                                                  app: Flask) -> None:
    from crm_rbac_plugin import team

    viewer = workspaces.role_by_key(rbac, world.ws, "viewer")
    _, token = team.invite(rbac, access_of(world.members["owner"]), "late@example.test",
                           [viewer])
    db.session.commit()
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales")
    db.session.commit()
    response = app.test_client().get(f"/settings/invitations/{token}")
    assert response.status_code == 404
    M = rbac.models.Membership
    assert db.session.scalar(sa.select(M.status).join(M.user).where(
        M.workspace_id == world.ws.id, M.user.has(email="late@example.test"))) == "pending"


def test_purge_moves_the_versions_of_the_workspace_and_its_partners_only(
        world: SimpleNamespace, app: Flask) -> None:
    """The purge's bulk deletes name the workspaces whose access they change: the purged
    one and the other side of its agreements; an unrelated workspace keeps its version
    (and its row unlocked until the purge commits)."""
    m = rbac.models
    third = workspaces.create_workspace(rbac, "Gamma Unrelated", owner=world.users["admin"],
                                        slug="gamma")
    db.session.add(m.SharingAgreement(granting_workspace_id=world.ws2.id,
                                      receiving_workspace_id=world.ws.id, status="active"))
    db.session.commit()

    def versions() -> dict[int, int]:
        with rbac.system():
            return dict(db.session.execute(sa.select(m.Workspace.id, m.Workspace.policy_version))
                        .tuples().all())
    purged, partner, unrelated = world.ws.id, world.ws2.id, third.id
    lifecycle.delete_workspace(rbac, access_of(world.members["owner"]), "Acme Sales", now=T0)
    db.session.commit()
    before = versions()
    assert [d[0] for d in lifecycle.purge_due(rbac, now=T0 + dt.timedelta(days=30))] == [purged]
    after = versions()
    assert purged not in after
    assert after[partner] > before[partner]  # its agreement with the purged one ended
    assert after[unrelated] == before[unrelated]


def test_an_account_deactivated_everywhere_creates_no_workspace(
        app: Flask, world: SimpleNamespace) -> None:
    """Its sign-in is refused; a session it opened before the deactivation creates no
    workspace either (page and API), while an account active somewhere still may."""
    from tests.test_sessions import sign_in

    member = sign_in(app, "member@example.test")
    owner = sign_in(app, "owner@example.test")
    assert owner.post(f"/settings/members/{world.members['member'].id}/deactivate"
                      ).status_code == 302
    W = rbac.models.Workspace
    before = db.session.scalar(sa.select(sa.func.count()).select_from(W))
    api = member.post("/api/v1/workspaces", json={"name": "Mine"})
    assert api.status_code == 403
    page = member.post("/settings/workspaces/new", data={"name": "Mine"})
    assert page.status_code in (302, 403)
    assert db.session.scalar(sa.select(sa.func.count()).select_from(W)) == before
    made = owner.post("/api/v1/workspaces", json={"name": "Owner's second"})
    assert made.status_code == 201
