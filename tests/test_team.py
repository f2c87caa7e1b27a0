"""Team management: invitations, member lifecycle, departments, reassignment, profile, CLI.

Each flow is checked through the pages (or the CLI) and its refusals are
checked to change nothing: a snapshot of the plugin's tables and of record
owners before and after.
"""

from __future__ import annotations

import datetime as dt
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.models import Client, Deal, Lead, Note, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import team, tokens, workspaces
from crm_rbac_plugin.errors import PermissionDenied, ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.team import reassignment
from crm_rbac_plugin.team.activity import RecentlySeen
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import give_role_admin, policy_snapshot, role

RECORD_MODELS = (Lead, Deal, Client, Task, Note)


def snapshot() -> dict[str, Any]:
    """Policy tables, invitations, users and every record's owner (to prove nothing changed)."""
    out = policy_snapshot()  # (without last_seen_at, which every request may write)
    for table in (rbac.models.Invitation.__table__, User.__table__):
        out[table.name] = [tuple(r) for r in db.session.execute(
            sa.select(table).order_by(*table.primary_key.columns))]
    with rbac.system():
        for model in RECORD_MODELS:
            out[model.__tablename__] = sorted(db.session.execute(
                sa.select(model.id, model.owner_id)).all())
    return out


def link_token(body: str) -> str:
    match = re.search(r"/settings/invitations/([A-Za-z0-9_.\-]+)", body)
    assert match, body
    return match.group(1)


def invite(client: Any, world: SimpleNamespace, email: str, *keys: str) -> Any:
    return client.post("/settings/members/invite", data={
        "email": email, "roles": [role(world, k).id for k in keys]})


def membership(email: str, ws: Any) -> Any:
    db.session.expire_all()
    M = rbac.models.Membership
    return db.session.scalar(sa.select(M).join(User).where(User.email == email,
                                                           M.workspace_id == ws.id))


# -- invitations ------------------------------------------------------------------------------


def test_invite_mails_a_link_and_accepting_creates_the_account(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    assert owner.get("/settings/members/invite").status_code == 200
    with mail.record_messages() as outbox:
        response = invite(owner, world, "New.Person@example.test", "member", "viewer")
    assert response.status_code == 302, response.text[:400]
    assert len(outbox) == 1 and outbox[0].recipients == ["new.person@example.test"]
    assert "Acme Sales" in outbox[0].subject and "Member, Viewer" in outbox[0].body
    token = link_token(outbox[0].body)

    pending = membership("new.person@example.test", world.ws)
    assert pending.status == "pending"
    assert {mr.role.key for mr in pending.member_roles} == {"member", "viewer"}
    page = owner.get("/settings/members?status=pending")
    assert "new.person@example.test" in page.text and "Open invitations" in page.text
    assert rbac.access_for(pending).active is False  # no access until accepted

    anon = app.test_client()
    page = anon.get(f"/settings/invitations/{token}")
    assert page.status_code == 200 and "Join Acme Sales" in page.text
    assert anon.post(f"/settings/invitations/{token}", data={
        "name": "New Person", "password": "short", "confirm": "short"}).status_code == 400
    assert membership("new.person@example.test", world.ws).status == "pending"
    response = anon.post(f"/settings/invitations/{token}", data={
        "name": "New Person", "password": "correct horse", "confirm": "correct horse"})
    assert response.status_code == 302
    joined = membership("new.person@example.test", world.ws)
    assert joined.status == "active" and joined.user.name == "New Person"
    assert joined.user.check_password("correct horse")
    assert anon.get("/leads/").status_code == 200  # signed in, in the workspace

    before = snapshot()
    reused = app.test_client().post(f"/settings/invitations/{token}", data={
        "name": "Mallory", "password": "another password", "confirm": "another password"})
    assert reused.status_code == 400 and "already been used" in reused.text
    assert snapshot() == before


def test_expired_tampered_revoked_and_replaced_links_change_nothing(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages() as outbox:
        invite(owner, world, "late@example.test", "member")
    token = link_token(outbox[0].body)
    anon = app.test_client()
    before = snapshot()
    form = {"name": "Late", "password": "long enough", "confirm": "long enough"}

    app.config["RBAC_INVITE_MAX_AGE"] = -1  # every signature is now too old
    expired = anon.post(f"/settings/invitations/{token}", data=form)
    assert expired.status_code == 400 and "expired" in expired.text
    app.config["RBAC_INVITE_MAX_AGE"] = 3600
    inv = db.session.scalar(sa.select(rbac.models.Invitation))
    inv.expires_at = utcnow() - dt.timedelta(seconds=1)  # the stored expiry counts too
    db.session.commit()
    assert anon.post(f"/settings/invitations/{token}", data=form).status_code == 400
    inv.expires_at = utcnow() + dt.timedelta(hours=1)
    db.session.commit()
    before = snapshot()

    tampered = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    assert anon.post(f"/settings/invitations/{tampered}", data=form).status_code == 404
    assert anon.get("/settings/invitations/not-a-token").status_code == 404

    with mail.record_messages() as outbox:
        assert owner.post(f"/settings/invitations/{inv.id}/resend").status_code == 302
    new_token = link_token(outbox[0].body)
    assert new_token != token
    replaced = anon.post(f"/settings/invitations/{token}", data=form)
    assert replaced.status_code == 400 and "replaced" in replaced.text
    assert snapshot()["rbac_membership"] == before["rbac_membership"]

    assert owner.post(f"/settings/invitations/{inv.id}/revoke").status_code == 302
    assert membership("late@example.test", world.ws) is None  # the Pending membership is gone
    before = snapshot()
    revoked = anon.post(f"/settings/invitations/{new_token}", data=form)
    assert revoked.status_code == 400 and "revoked" in revoked.text
    assert snapshot() == before


@pytest.mark.parametrize(("actor", "keys", "status"), [
    ("admin", ("owner",), 403),        # only an Owner gives Owner
    ("admin", ("admin",), 403),        # ... or Admin
    ("manager", ("member",), 403),     # a Manager invites only into their own department
    ("member", ("member",), 403),
])
def test_nobody_invites_beyond_their_rights(world: SimpleNamespace, login: Any, actor: str,
                                            keys: tuple[str, ...], status: int) -> None:
    client = login(world.users[actor], world.ws)
    before = snapshot()
    with mail.record_messages() as outbox:
        response = invite(client, world, "nope@example.test", *keys)
    assert response.status_code == status
    assert outbox == [] and snapshot() == before


def test_a_role_admin_cannot_invite_with_a_role_wider_than_their_own(
        world: SimpleNamespace, login: Any) -> None:
    give_role_admin(world, "junior_rep")  # members.* but only their own leads
    client = login(world.users["junior_rep"], world.ws)
    before = snapshot()
    assert invite(client, world, "wide@example.test", "viewer").status_code in (400, 403)
    assert snapshot() == before
    assert invite(client, world, "narrow@example.test", "junior_rep").status_code == 302


def test_an_existing_user_accepts_while_signed_in(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages() as outbox:
        assert invite(owner, world, "outsider@example.test", "viewer").status_code == 302
    token = link_token(outbox[0].body)
    before = snapshot()
    stranger = app.test_client().post(f"/settings/invitations/{token}", data={})
    assert stranger.status_code == 403 and snapshot() == before
    wrong = login(world.users["member"]).post(f"/settings/invitations/{token}", data={})
    assert wrong.status_code == 403 and snapshot() == before
    outsider = login(world.users["outsider"], world.ws2)
    assert outsider.post(f"/settings/invitations/{token}", data={}).status_code == 302
    assert membership("outsider@example.test", world.ws).status == "active"
    assert membership("outsider@example.test", world.ws2).status == "active"
    assert owner.post("/settings/members/invite", data={
        "email": "outsider@example.test", "roles": [role(world, "viewer").id]}
    ).status_code == 400  # already a member


# -- members page ------------------------------------------------------------------------------


def test_members_page_filters_searches_and_records_last_activity(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    version = db.session.get(rbac.models.Workspace, world.ws.id).policy_version
    page = owner.get("/settings/members")
    assert page.status_code == 200
    assert "member2@example.test" in page.text and "Last activity" in page.text
    db.session.expire_all()
    me = membership("owner@example.test", world.ws)
    assert me.last_seen_at is not None
    # Recording activity is no policy change: cached access stays valid.
    assert db.session.get(rbac.models.Workspace, world.ws.id).policy_version == version

    by_role = owner.get(f"/settings/members?role={role(world, 'viewer').id}").text
    assert 'data-member="viewer@example.test"' in by_role
    assert 'data-member="member@example.test"' not in by_role
    sales = world.departments["sales"].id
    by_dept = owner.get(f"/settings/members?department={sales}").text
    assert 'data-member="manager@example.test"' in by_dept
    assert 'data-member="viewer@example.test"' not in by_dept
    search = owner.get("/settings/members?q=JUNIOR").text
    assert 'data-member="junior_rep@example.test"' in search
    assert 'data-member="owner@example.test"' not in search
    assert owner.get("/settings/members?status=bogus").status_code == 400
    # A Manager invites into their own department (members.create, department scope).
    manager = login(world.users["manager"], world.ws).get("/settings/members")
    assert manager.status_code == 200 and "Invite a member" in manager.text
    # A Viewer (no members.view) does not reach the list.
    assert login(world.users["viewer"], world.ws).get("/settings/members").status_code == 403


# -- deactivation -----------------------------------------------------------------------------


def test_last_activity_state_stays_bounded_in_size_and_age() -> None:
    seen = RecentlySeen()
    start = dt.datetime(2026, 1, 1)
    interval = dt.timedelta(minutes=5)
    # Many members within one interval: the process never keeps more than the limit.
    for i in range(1000):
        assert seen.due((i, "1"), start + dt.timedelta(milliseconds=i), interval, 50)
        assert len(seen) <= 50
    # A pair still remembered is not written again within the interval ...
    assert not seen.due((999, "1"), start + dt.timedelta(seconds=2), interval, 50)
    # ... a forgotten one is (its conditional UPDATE then changes no row).
    assert seen.due((0, "1"), start + dt.timedelta(seconds=2), interval, 50)
    assert len(seen) == 50
    # Past the interval every older entry goes, whatever the limit.
    later = start + interval + dt.timedelta(seconds=3)
    assert seen.due(("late", "1"), later, interval, 50)
    assert len(seen) == 1


def test_last_activity_is_written_for_every_member_past_the_tracked_limit(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    app.config["RBAC_LAST_SEEN_TRACKED"] = 2
    who = ("owner", "admin", "member", "viewer")
    for key in who:
        assert login(world.users[key], world.ws).get("/settings/profile").status_code == 200
        assert len(app.extensions["rbac_last_seen"]) <= 2
    db.session.expire_all()
    for key in who:
        assert membership(f"{key}@example.test", world.ws).last_seen_at is not None
    # The owner's pair was forgotten: a new request runs the UPDATE again, which
    # changes nothing within the interval.
    first = membership("owner@example.test", world.ws).last_seen_at
    assert login(world.users["owner"], world.ws).get("/settings/profile").status_code == 200
    db.session.expire_all()
    assert membership("owner@example.test", world.ws).last_seen_at == first


def test_deactivation_takes_effect_on_the_next_request_and_keeps_records(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    _, plaintext = tokens.create_token(rbac, world.members["member"], "script")
    db.session.commit()
    api = app.test_client()
    headers = {"Authorization": f"Bearer {plaintext}"}
    assert member.get("/leads/").status_code == 200
    assert api.get("/api/v1/records/leads", headers=headers).status_code == 200

    owner = login(world.users["owner"], world.ws)
    mid = world.members["member"].id
    response = owner.post(f"/settings/members/{mid}/deactivate")
    assert response.status_code == 302
    assert membership("member@example.test", world.ws).status == "inactive"

    assert member.get("/leads/").status_code == 403  # the open session, very next request
    assert api.get("/api/v1/records/leads", headers=headers).status_code in (401, 403)
    with rbac.system():
        assert db.session.scalar(sa.select(Lead.owner_id).where(
            Lead.id == world.leads["member"].id)) == world.users["member"].id
    # Their only workspace: they cannot sign in again.
    refused = app.test_client().post("/login", data={"email": "member@example.test",
                                                     "password": "password"})
    # The wrong password's answer: a right password must not be told apart.
    assert refused.status_code == 200 and "do not match an account" in refused.text

    assert owner.post(f"/settings/members/{mid}/reactivate").status_code == 302
    assert member.get("/leads/").status_code == 200
    # Deactivation revoked the token: reactivation does not revive it.
    assert api.get("/api/v1/records/leads", headers=headers).status_code == 401


def test_deactivation_refusals(app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    admin = login(world.users["admin"], world.ws)
    before = snapshot()
    # Nobody deactivates themselves.
    assert owner.post(f"/settings/members/{world.members['owner'].id}/deactivate"
                      ).status_code == 403
    # Only an Owner deactivates an Owner or an Admin; a Manager only their own team
    # (member2 is in their department but not assigned to them).
    assert admin.post(f"/settings/members/{world.members['owner'].id}/deactivate"
                      ).status_code == 403
    manager = login(world.users["manager"], world.ws)
    assert manager.post(f"/settings/members/{world.members['member2'].id}/deactivate"
                        ).status_code == 403
    assert snapshot() == before


def test_the_last_active_owner_is_never_deactivated(world: SimpleNamespace) -> None:
    """Two Owners deactivating each other at once: the second change is refused."""
    workspaces.assign_role(rbac, world.members["admin"], role(world, "owner"))
    db.session.commit()
    owner_access = rbac.access_for(world.members["owner"])
    admin_access = rbac.access_for(world.members["admin"])
    team.deactivate(rbac, owner_access, world.members["admin"])
    db.session.commit()
    with pytest.raises(PermissionDenied, match="at least one active Owner"):
        team.deactivate(rbac, admin_access, world.members["owner"])  # a stale actor
    db.session.rollback()
    assert membership("owner@example.test", world.ws).status == "active"


# -- reassignment ------------------------------------------------------------------------------


def owners(user_id: int) -> dict[str, int]:
    with rbac.system():
        return {m.__tablename__: db.session.scalar(sa.select(sa.func.count()).select_from(m)
                                                   .where(m.owner_id == user_id))
                for m in RECORD_MODELS}


def test_reassign_previews_then_moves_everything_in_one_go(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    source, target = world.users["member"], world.users["member2"]
    url = f"/settings/members/{world.members['member'].id}/reassign"
    assert owner.get(url).status_code == 200
    moving = owners(source.id)
    before = snapshot()
    preview = owner.post(url, data={"to_user_id": target.id, "step": "preview"})
    assert preview.status_code == 200 and "data-preview" in preview.text
    assert snapshot() == before
    assert team.reassign_preview(rbac, rbac.access_for(world.members["owner"]), source.id,
                                 target.id) == {
        "leads": moving["lead"], "deals": moving["deal"], "clients": moving["client"],
        "notes": moving["note"], "tasks": moving["task"], "invoices": 0, "campaigns": 0}
    target_before = owners(target.id)
    done = owner.post(url, data={"to_user_id": target.id, "step": "apply"})
    assert done.status_code == 302
    assert sum(owners(source.id).values()) == 0
    assert owners(target.id) == {k: target_before[k] + moving[k] for k in moving}
    event = db.session.scalar(sa.select(rbac.models.AuditEvent).where(
        rbac.models.AuditEvent.action == "records.reassigned"))
    assert event is not None and event.actor_user_id == world.users["owner"].id
    assert event.after["leads"] == moving["lead"]


def test_reassign_only_chosen_resources_and_refusals(app: Flask, world: SimpleNamespace,
                                                     login: Any) -> None:
    owner_access = rbac.access_for(world.members["owner"])
    src, dst = world.users["member"].id, world.users["member2"].id
    deals_before = owners(src)["deal"]
    assert team.reassign(rbac, owner_access, src, dst, ["leads"]) == {"leads": 1}
    db.session.commit()
    assert owners(src)["lead"] == 0 and owners(src)["deal"] == deals_before
    # One record from its page.
    deal = world.deals["member-won"]
    assert team.reassign(rbac, owner_access, src, dst, ["deals"], ids=[deal.id]) == {"deals": 1}
    db.session.commit()
    # The same from the page, for one record (a link from the record's page).
    owner = login(world.users["owner"], world.ws)
    other = world.deals["member-new"]
    url = (f"/settings/members/{world.members['member'].id}/reassign"
           f"?resource=deals&id={other.id}")
    assert "Only deals" in owner.get(url).text
    assert owner.post(url, data={"to_user_id": dst, "step": "apply"}).status_code == 302
    with rbac.system():
        assert db.session.scalar(sa.select(Deal.owner_id).where(Deal.id == other.id)) == dst
    assert owners(src)["deal"] == deals_before - 2
    # The Manager holds no "manage" (reassign) right; a non-member is no target.
    before = snapshot()
    manager = login(world.users["manager"], world.ws)
    assert manager.post(f"/settings/members/{world.members['member'].id}/reassign",
                        data={"to_user_id": dst, "step": "apply"}).status_code == 403
    with pytest.raises(Exception, match="active member"):
        team.reassign(rbac, owner_access, src, world.users["outsider"].id)
    db.session.rollback()
    assert snapshot() == before


def test_an_error_midway_rolls_back_every_reassigned_record(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    app.config["RBAC_REASSIGN_BATCH"] = 2  # several flushes happen before the failure
    calls = {"n": 0}
    real = reassignment._set_owner

    def failing(res: Any, record: Any, user_id: Any) -> None:
        calls["n"] += 1
        if calls["n"] > 5:
            raise RuntimeError("disk full")
        real(res, record, user_id)

    monkeypatch.setattr(reassignment, "_set_owner", failing)
    before = snapshot()
    src, dst = world.users["member2"].id, world.users["member"].id
    with pytest.raises(RuntimeError, match="disk full"):
        team.reassign(rbac, rbac.access_for(world.members["owner"]), src, dst)
    assert calls["n"] > 5
    db.session.rollback()
    assert snapshot() == before


# -- departments and managers -------------------------------------------------------------------


def test_departments_and_manager_assignments(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    D = rbac.models.Department
    assert owner.get("/settings/departments").status_code == 200
    assert owner.post("/settings/departments", data={"name": "Finance"}).status_code == 302
    assert owner.post("/settings/departments", data={"name": "finance"}).status_code == 400
    fin = db.session.scalar(sa.select(D).where(D.name == "Finance"))
    assert owner.post(f"/settings/departments/{fin.id}/rename",
                      data={"name": "Revenue"}).status_code == 302
    db.session.expire_all()
    assert db.session.get(D, fin.id).name == "Revenue"

    sales = world.departments["sales"]
    before = snapshot()
    refused = owner.post(f"/settings/departments/{sales.id}/delete")
    assert refused.status_code == 400 and snapshot() == before
    assert "move members first" in owner.get("/settings/departments").text

    viewer = world.members["viewer"]
    assert owner.post(f"/settings/members/{viewer.id}/department",
                      data={"department_id": fin.id}).status_code == 302
    assert membership("viewer@example.test", world.ws).department_id == fin.id
    assert owner.post(f"/settings/departments/{fin.id}/delete").status_code == 400
    assert owner.post(f"/settings/members/{viewer.id}/department",
                      data={"department_id": ""}).status_code == 302
    assert owner.post(f"/settings/departments/{fin.id}/delete").status_code == 302
    assert db.session.scalar(sa.select(D.id).where(D.id == fin.id)) is None

    mgr, mem2 = world.members["manager"], world.members["member2"]
    page = owner.get(f"/settings/members/{mgr.id}")
    assert page.status_code == 200 and "Member" in page.text
    assert owner.post(f"/settings/members/{mgr.id}/team",
                      data={"member_id": mem2.id}).status_code == 302
    assert world.users["member2"].id in rbac.access_for(mgr).team_user_ids
    assert owner.post(f"/settings/members/{mgr.id}/team",
                      data={"member_id": mem2.id}).status_code == 400
    assert owner.post(f"/settings/members/{mgr.id}/team/{mem2.id}/remove").status_code == 302
    assert world.users["member2"].id not in rbac.access_for(mgr).team_user_ids
    # A Manager cannot widen their own team.
    manager = login(world.users["manager"], world.ws)
    assert manager.post(f"/settings/members/{mgr.id}/team",
                        data={"member_id": mem2.id}).status_code == 403


# -- profile -------------------------------------------------------------------------------------


def test_profile_edits_name_password_and_notifications_only(world: SimpleNamespace,
                                                            login: Any) -> None:
    client = login(world.users["member"], world.ws)
    page = client.get("/settings/profile")
    assert page.status_code == 200 and 'name="roles"' not in page.text
    assert 'name="status"' not in page.text
    wrong = client.post("/settings/profile", data={
        "name": "Renamed", "current_password": "nope", "new_password": "new password 1"})
    assert wrong.status_code == 400 and "current password" in wrong.text
    ok = client.post("/settings/profile", data={
        "name": "Renamed", "current_password": "password", "new_password": "new password 1",
        "status": "inactive", "roles": [role(world, "owner").id]})
    assert ok.status_code == 302
    me = membership("member@example.test", world.ws)
    assert me.user.name == "Renamed" and me.user.check_password("new password 1")
    assert me.notify_email is False  # the checkbox was left unticked
    assert me.status == "active" and {mr.role.key for mr in me.member_roles} == {"member"}


def test_a_profile_password_change_is_typed_twice_and_changes_the_password(
        world: SimpleNamespace, login: Any) -> None:
    """The page asks for the new password twice, and the current password is no new one;
    either refusal is a 400 on its field and leaves the password as it was."""
    client = login(world.users["member"], world.ws)
    assert 'name="confirm_new_password"' in client.get("/settings/profile").text
    base = {"name": "Member", "current_password": "password"}
    typo = client.post("/settings/profile", data={
        **base, "new_password": "new password 1", "confirm_new_password": "new password 2"})
    assert typo.status_code == 400 and "The two passwords do not match." in typo.text
    same = client.post("/settings/profile", data={
        **base, "new_password": "password", "confirm_new_password": "password"})
    assert same.status_code == 400 and "This is your current password" in same.text
    me = membership("member@example.test", world.ws)
    assert me.user.check_password("password") and not me.user.check_password("new password 1")
    ok = client.post("/settings/profile", data={
        **base, "new_password": "new password 1", "confirm_new_password": "new password 1"})
    assert ok.status_code == 302
    assert membership("member@example.test", world.ws).user.check_password("new password 1")


# -- CLI ----------------------------------------------------------------------------------------


def test_cli_members_commands(app: Flask, world: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    listed = runner.invoke(args=["rbac", "members", "list", "--workspace", "acme"])
    assert listed.exit_code == 0 and "member2@example.test" in listed.output

    with mail.record_messages() as outbox:
        result = runner.invoke(args=["rbac", "members", "invite", "--workspace", "acme",
                                     "--email", "cli@example.test", "--role", "member",
                                     "--role", "viewer"])
    assert result.exit_code == 0, result.output
    assert len(outbox) == 1 and "/settings/invitations/" in outbox[0].body
    assert membership("cli@example.test", world.ws).status == "pending"

    before = snapshot()
    beyond = runner.invoke(args=["rbac", "members", "invite", "--workspace", "acme",
                                 "--email", "x@example.test", "--role", "owner",
                                 "--as", "admin@example.test"])
    assert beyond.exit_code == 1 and "Only an Owner" in beyond.output
    unknown = runner.invoke(args=["rbac", "members", "list", "--workspace", "nope"])
    assert unknown.exit_code == 1 and "no workspace" in unknown.output
    last = runner.invoke(args=["rbac", "members", "deactivate", "--workspace", "acme",
                               "--email", "owner@example.test"])
    assert last.exit_code == 1 and "yourself" in last.output
    assert snapshot() == before

    assert runner.invoke(args=["rbac", "members", "deactivate", "--workspace", "acme",
                               "--email", "member@example.test"]).exit_code == 0
    assert membership("member@example.test", world.ws).status == "inactive"
    assert runner.invoke(args=["rbac", "members", "reactivate", "--workspace", "acme",
                               "--email", "member@example.test"]).exit_code == 0
    assert membership("member@example.test", world.ws).status == "active"

    moving = sum(owners(world.users["member"].id).values())
    no = runner.invoke(args=["rbac", "members", "reassign", "--workspace", "acme",
                             "--from", "member@example.test", "--to", "member2@example.test"],
                       input="n\n")
    assert no.exit_code == 1 and sum(owners(world.users["member"].id).values()) == moving
    yes = runner.invoke(args=["rbac", "members", "reassign", "--workspace", "acme",
                              "--from", "member@example.test", "--to", "member2@example.test",
                              "--resource", "leads", "--resource", "deals", "--yes"])
    assert yes.exit_code == 0, yes.output
    assert "Reassigned" in yes.output
    left = owners(world.users["member"].id)
    assert left["lead"] == 0 and left["deal"] == 0 and left["client"] > 0


def test_every_team_form_carries_a_csrf_token(app: Flask, world: SimpleNamespace,
                                              login: Any) -> None:
    app.config["WTF_CSRF_ENABLED"] = True
    owner = login(world.users["owner"], world.ws)
    with mail.record_messages():
        team.invite(rbac, rbac.access_for(world.members["owner"]), "csrf@example.test",
                    [role(world, "member")])
    db.session.commit()
    mgr = world.members["manager"].id
    for url in ("/settings/members", "/settings/members/invite", f"/settings/members/{mgr}",
                f"/settings/members/{mgr}/reassign", "/settings/departments",
                "/settings/profile"):
        page = owner.get(url)
        assert page.status_code == 200, url
        forms = re.findall(r'<form method="post".*?</form>', page.text, re.DOTALL)
        assert forms, url
        assert all('name="csrf_token"' in form for form in forms), url
    before = snapshot()
    assert owner.post(f"/settings/members/{world.members['member'].id}/deactivate"
                      ).status_code == 400
    assert snapshot() == before


def test_mails_can_also_go_to_a_file(app: Flask, world: SimpleNamespace, tmp_path: Any) -> None:
    path = tmp_path / "mail.log"
    app.config["RBAC_MAIL_CONSOLE"] = str(path)
    with mail.record_messages() as outbox:
        team.invite(rbac, rbac.access_for(world.members["owner"]), "file@example.test",
                    [role(world, "viewer")])
    db.session.commit()
    assert len(outbox) == 1
    text = path.read_text()
    assert "mail to file@example.test" in text and "/settings/invitations/" in text


def test_without_flask_mail_the_invitation_is_printed_and_a_warning_logged(
        app: Flask, world: SimpleNamespace, monkeypatch: pytest.MonkeyPatch,
        capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture) -> None:
    """An app with no Flask-Mail extension (no ``crm-rbac[mail]``) still shows the link."""
    monkeypatch.delitem(app.extensions, "mail")
    monkeypatch.setitem(app.config, "MAIL_SERVER", "smtp.example.test")
    _, token = team.invite(rbac, rbac.access_for(world.members["owner"]),
                           "nomail@example.test", [role(world, "viewer")])
    db.session.commit()
    assert f"/settings/invitations/{token}" in capsys.readouterr().err
    assert "printed, not sent" in caplog.text and "crm-rbac[mail]" in caplog.text


def test_department_names_are_unique_in_a_workspace_whatever_the_case(
        world: SimpleNamespace) -> None:
    """Creating or renaming onto a name another department holds is a 400 on ``name``."""
    owner = rbac.access_for(world.members["owner"])
    before = sorted(d.name for d in db.session.scalars(sa.select(rbac.models.Department)))
    with pytest.raises(ValidationError) as refused:
        team.create_department(rbac, owner, "  sALES ")
    assert refused.value.field == "name" and "already exists" in refused.value.message
    db.session.rollback()
    support = db.session.scalar(sa.select(rbac.models.Department).where(
        rbac.models.Department.name == "Support"))
    with pytest.raises(ValidationError):
        team.rename_department(rbac, owner, support, "Sales")
    db.session.rollback()
    team.rename_department(rbac, owner, support, "SUPPORT")  # its own name, another case
    db.session.commit()
    after = sorted(d.name for d in db.session.scalars(sa.select(rbac.models.Department)))
    assert after == sorted(["SUPPORT" if n == "Support" else n for n in before])
