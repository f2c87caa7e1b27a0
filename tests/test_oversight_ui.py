"""The oversight pages as a reader meets them: the audit trail in sentences, "who can
…?", the sharing pages' workspace picker and confirmations, and the refusal page
with its "Request access" form.

The world (tests/conftest.py) names each member after their key ("Owner",
"Junior Rep"); "Acme Sales" (``w.ws``) shares with "Beta Education" (``w.ws2``),
whose Owner is ``dual``.
"""

from __future__ import annotations

import csv
import html
import io
import re
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db, mail
from crm_app.models import User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import sharing, workspaces
from crm_rbac_plugin.team import access_requests
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)


def role(world: SimpleNamespace, key: str) -> Any:
    return workspaces.role_by_key(rbac, world.ws, key)


def as_owner(world: SimpleNamespace) -> Any:
    return rbac.as_member(rbac.access_for(world.members["owner"]))


def rows(page: str) -> list[str]:
    """The audit page's event rows, newest first."""
    return page.split('class="rbac-audit-row"')[1:]


def headline(row: str) -> str:
    return html.unescape(re.search(r'<p class="rbac-audit-headline">(.*?)</p>', row).group(1))


def events(action: str) -> list[Any]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A).where(A.action == action).order_by(A.id)))


def offer(world: SimpleNamespace, permissions: list[str], *, accept: bool = False) -> Any:
    with as_owner(world) as owner:
        agreement = sharing.create_agreement(rbac, owner, workspace="beta",
                                             permissions=permissions)
        db.session.commit()
    if accept:
        dual = db.session.scalar(sa.select(rbac.models.Membership).where(
            rbac.models.Membership.workspace_id == world.ws2.id,
            rbac.models.Membership.user_id == world.users["dual"].id))
        with rbac.as_member(rbac.access_for(dual)) as access:
            sharing.accept(rbac, access, agreement)
            db.session.commit()
    return agreement


# -- the audit trail in sentences ----------------------------------------------------------------


def test_audit_trail_reads_as_sentences_with_names_and_diffs(world: SimpleNamespace,
                                                              login: Any) -> None:
    junior = role(world, "junior_rep")
    with as_owner(world):
        grant = workspaces.add_grant(rbac, junior, "leads", "export", "own")
        db.session.commit()
        db.session.delete(grant)
        db.session.commit()
        temp = rbac.models.Role(workspace=world.ws, name="Temp")
        db.session.add(temp)
        db.session.commit()
        workspaces.add_grant(rbac, temp, "deals", "view", "all")
        db.session.commit()
        db.session.delete(temp)
        db.session.commit()
    agreement = offer(world, ["clients.view"])
    with as_owner(world) as owner:
        sharing.revoke(rbac, owner, agreement)
        db.session.commit()
    owner_client = login(world.users["owner"], world.ws)
    assert owner_client.post(
        f"/settings/members/{world.members['viewer'].id}/deactivate").status_code == 302
    page = owner_client.get("/settings/audit").text
    lines = [headline(r) for r in rows(page)]
    assert lines[0] == "Viewer deactivated by Owner"
    assert "<dt>status</dt><dd><del>active</del>" in rows(page)[0]
    assert "<ins>inactive</ins>" in rows(page)[0]
    assert "Sharing agreement Acme Sales → Beta Education (clients) revoked by Owner" in lines
    assert "Sharing agreement Acme Sales → Beta Education (clients) offered by Owner (+1 more)" in lines
    assert "Junior Rep: leads.export removed (own) by Owner" in lines
    assert "Junior Rep: leads.export added (own) by Owner" in lines
    assert "Role Temp deleted by Owner (+1 more)" in lines
    # The grant's role is gone: named as such, never by its id.
    assert "A deleted role: deals.view added (all) by Owner" in lines
    for row in rows(page):
        text = headline(row)
        assert not re.search(r"(user|member|role|agreement|workspace) #\d", text), text
        # The stored JSON is behind a toggle, after the sentence.
        assert row.index("<details") > row.index("rbac-audit-headline")
    assert '<details class="rbac-audit-raw"><summary>Raw record</summary><pre>' in page


def test_audit_filters_by_member_and_role(world: SimpleNamespace, login: Any) -> None:
    junior = role(world, "junior_rep")
    with as_owner(world):
        workspaces.add_grant(rbac, junior, "leads", "export", "own")
        db.session.commit()
    client = login(world.users["owner"], world.ws)
    viewer = world.members["viewer"].id
    assert client.post(f"/settings/members/{viewer}/deactivate").status_code == 302
    page = client.get("/settings/audit").text
    assert '<label for="audit-member">About member</label>' in page
    assert '<label for="audit-role">About role</label>' in page
    about_viewer = [headline(r) for r in rows(client.get(f"/settings/audit?member={viewer}").text)]
    assert "Viewer deactivated by Owner" in about_viewer
    assert not any("leads.export" in line for line in about_viewer)
    about_junior = [headline(r) for r in rows(
        client.get(f"/settings/audit?role={junior.id}").text)]
    assert "Junior Rep: leads.export added (own) by Owner" in about_junior
    assert "Viewer deactivated by Owner" not in about_junior
    assert client.get("/settings/audit?role=x").status_code == 400


def test_audit_csv_carries_the_sentences_and_neutralises_formulas(world: SimpleNamespace,
                                                                  login: Any) -> None:
    with as_owner(world):
        evil = rbac.models.Role(workspace=world.ws, name="=HYPERLINK(\"http://x\")")
        db.session.add(evil)
        db.session.commit()
    exported = login(world.users["owner"], world.ws).get("/settings/audit.csv")
    table = list(csv.reader(io.StringIO(exported.text)))
    header = table[0]
    assert header[:5] == ["id", "at", "actor_user_id", "actor_membership_id", "action"]
    summaries = [r[header.index("summary")] for r in table[1:]]
    assert "Role =HYPERLINK(\"http://x\") created by Owner" in summaries
    assert all(r[header.index("actor")] for r in table[1:])
    for r in table[1:]:
        assert not any(cell.startswith(("=", "+", "-", "@")) for cell in r)


# -- who can ------------------------------------------------------------------------------------


def test_who_can_lists_members_with_their_path_and_exports_csv(world: SimpleNamespace,
                                                               login: Any) -> None:
    with as_owner(world):
        base = rbac.models.Role(workspace=world.ws, name="=Base exporter")
        db.session.add(base)
        db.session.flush()
        workspaces.add_grant(rbac, base, "deals", "view", "all")
        workspaces.add_grant(rbac, base, "deals", "export", "own")
        child = rbac.models.Role(workspace=world.ws, name="Deal desk", parent_id=base.id)
        db.session.add(child)
        db.session.flush()
        workspaces.assign_role(rbac, world.members["member2"], child)
        db.session.commit()
    offer(world, ["deals.view", "deals.export"], accept=True)
    client = login(world.users["admin"], world.ws)
    page = client.get("/settings/who-could?mode=now&resource=deals&action=export")
    assert page.status_code == 200
    text = html.unescape(page.text)
    row = text.split(f'data-member="{world.members["member2"].id}"')[1].split("</tr>")[0]
    assert "Deal desk → inherited from =Base exporter → own records" in row
    assert "is-allowed" in text.split(f'data-member="{world.members["member2"].id}"')[0][-80:]
    assert "Members of Beta Education" in text
    assert "Outsider" not in text  # another workspace's members are not named
    exported = client.get("/settings/who-can.csv?resource=deals&action=export")
    table = list(csv.reader(io.StringIO(exported.text)))
    assert table[0][:4] == ["member", "status", "can", "role"]
    member2 = next(r for r in table if r[0] == "Member2")
    assert member2[2:5] == ["yes", "Deal desk", "'=Base exporter"]
    assert next(r for r in table if r[0] == "Viewer")[2] == "no"
    assert ["members of Beta Education", "", "through sharing"] == table[-1][:3]
    assert client.get("/settings/who-can.csv?resource=deals&action=fly").status_code == 400
    # The historic question still works on the same page.
    deal = world.deals["member-won"]
    assert "Finance" in client.get(f"/settings/who-could?resource=deals&record={deal.id}").text
    assert login(world.users["member"], world.ws).get(
        "/settings/who-can.csv?resource=deals&action=export").status_code == 403


# -- sharing ------------------------------------------------------------------------------------


def gamma(world: SimpleNamespace) -> Any:
    """A third workspace the Acme Owner also belongs to."""
    ws = workspaces.create_workspace(rbac, "Gamma Labs", owner=world.users["owner"], slug="gamma")
    db.session.commit()
    return ws


def test_sharing_picks_the_workspace_by_name_without_listing_others(
        world: SimpleNamespace, login: Any) -> None:
    gamma(world)
    client = login(world.users["owner"], world.ws)
    form = client.get("/settings/sharing/new").text
    datalist = form.split('<datalist id="workspace-suggestions">')[1].split("</datalist>")[0]
    assert 'value="Gamma Labs"' in datalist
    assert "Beta Education" not in form and "Acme Sales</option>" not in datalist
    unknown = client.post("/settings/sharing/new", data={
        "workspace": "Beta Educ", "share__clients__view": "y"})
    assert unknown.status_code == 400 and "No workspace named Beta Educ." in unknown.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.SharingAgreement)) == 0
    made = client.post("/settings/sharing/new", data={
        "workspace": "beta education", "share__clients__view": "y"})
    assert made.status_code == 302, made.text[:400]
    agreement = db.session.scalar(sa.select(rbac.models.SharingAgreement))
    assert agreement.receiving_workspace_id == world.ws2.id
    again = client.post("/settings/sharing/new", data={
        "workspace": "beta", "share__clients__view": "y"})
    assert again.status_code == 409
    assert f'href="/settings/sharing/{agreement.id}/edit"' in again.text


def test_sharing_warns_when_the_receiving_plan_lacks_a_module(world: SimpleNamespace,
                                                              login: Any) -> None:
    world.ws2.plan = "free"  # clients and work, no sales
    db.session.commit()
    client = login(world.users["owner"], world.ws)
    data = {"workspace": "Beta Education", "share__leads__view": "y",
            "share__clients__view": "y"}
    warned = client.post("/settings/sharing/new", data=data)
    assert warned.status_code == 200
    assert "plan does not include Leads." in html.unescape(warned.text)
    assert 'name="confirm_plan" value="1"' in warned.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(
        rbac.models.SharingAgreement)) == 0
    confirmed = client.post("/settings/sharing/new", data={**data, "confirm_plan": "1"})
    assert confirmed.status_code == 302
    assert db.session.scalar(sa.select(rbac.models.SharingAgreement)).status == "pending"


def test_pending_badge_and_confirmations_name_what_stops(world: SimpleNamespace,
                                                         login: Any) -> None:
    agreement = offer(world, ["clients.view"])
    beta = login(world.users["dual"], world.ws2)
    page = beta.get("/settings/sharing?tab=with").text
    tab = page.split('href="/settings/sharing"')[1].split("</a>")[0]
    assert 'title="1 pending">1<' in tab
    assert "Decline Acme Sales&#39;s agreement?" in page
    acme = login(world.users["owner"], world.ws).get("/settings/sharing").text
    clients = sum(1 for _ in world.clients)
    assert (f"Revoke the agreement with Beta Education? Beta Education loses access to "
            f"{clients} Clients.") in html.unescape(acme)
    membership = rbac.models.Membership
    with rbac.as_member(rbac.access_for(db.session.scalar(sa.select(membership).where(
            membership.workspace_id == world.ws2.id,
            membership.user_id == world.users["dual"].id)))) as dual:
        sharing.accept(rbac, dual, agreement)
        db.session.commit()
    page = beta.get("/settings/sharing?tab=with").text
    assert 'title="1 pending"' not in page
    assert f"You lose access to {clients} Clients Acme Sales shares." in html.unescape(page)


# -- refusals and access requests ----------------------------------------------------------------


def test_refusal_page_names_who_can_grant(world: SimpleNamespace, login: Any,
                                          app: Flask) -> None:
    refused = login(world.users["junior_rep"], world.ws).get("/settings/roles")
    assert refused.status_code == 403
    assert ("You need view on roles. Ask Owner (Owner) or Admin (Admin) to grant it."
            in refused.text)
    assert 'action="/settings/request-access"' in refused.text
    # Someone with no membership here learns nothing about the workspace's people.
    nobody = User(email="nobody@example.test", name="Nobody")
    nobody.password_hash = world.users["owner"].password_hash
    db.session.add(nobody)
    db.session.commit()
    generic = login(nobody, world.ws).get("/settings/roles")
    assert generic.status_code == 403
    assert "Owner" not in generic.text and "request-access" not in generic.text


def test_request_access_mails_audits_and_throttles(world: SimpleNamespace, login: Any,
                                                   app: Flask) -> None:
    junior = login(world.users["junior_rep"], world.ws)
    data = {"action": "view", "resource": "roles", "next": "/settings/roles",
            "note": "=to review the roles"}
    with mail.record_messages() as outbox:
        sent = junior.post("/settings/request-access", data=data, follow_redirects=True)
        assert "Request sent to Owner, Admin." in sent.text
        assert sorted(m.recipients[0] for m in outbox) == ["admin@example.test",
                                                          "owner@example.test"]
        assert "Junior Rep asks for view on roles in Acme Sales" in outbox[0].body
        asked = events("access.requested")
        assert len(asked) == 1 and asked[0].target == "roles.view"
        # The grantors' notification lists show it too, without a second mail.
        N = rbac.models.Notification
        listed = db.session.scalars(sa.select(N).where(
            N.event == "access.requested")).all()
        assert sorted(n.membership_id for n in listed) == sorted(
            [world.members["owner"].id, world.members["admin"].id])
        assert {n.summary for n in listed} == {"Junior Rep asks for view on roles"}
        assert {n.mail_state for n in listed} == {"skipped"}
        assert all(n.link == f"/settings/members/{world.members['junior_rep'].id}/access"
                   for n in listed)
        assert asked[0].actor_membership_id == world.members["junior_rep"].id
        again = junior.post("/settings/request-access", data=data, follow_redirects=True)
        assert "less than an hour ago" in again.text
        assert len(outbox) == 2 and len(events("access.requested")) == 1
        bad = junior.post("/settings/request-access", data={**data, "resource": "nowhere"})
        assert bad.status_code == 400 and "permission" in bad.text
        held = login(world.users["admin"], world.ws).post("/settings/request-access", data=data)
        assert held.status_code == 400
        app.config["WTF_CSRF_ENABLED"] = True
        try:
            forged = login(world.users["member"], world.ws).post(
                "/settings/request-access", data=data)
        finally:
            app.config["WTF_CSRF_ENABLED"] = False
        assert forged.status_code == 400
        assert len(outbox) == 2 and len(events("access.requested")) == 1
    page = login(world.users["owner"], world.ws).get("/settings/audit").text
    assert "Junior Rep asked for roles.view" in [headline(r) for r in rows(page)]



def test_a_team_manager_is_named_only_to_their_own_team(world: SimpleNamespace) -> None:
    """The Manager exports leads and gives roles to their team (Member) only: Member2,
    outside it, is not sent to them; Member is."""
    manager = world.members["manager"]
    assert world.users["member"].id in rbac.access_for(manager).team_user_ids
    assert world.users["member2"].id not in rbac.access_for(manager).team_user_ids

    def named(key: str) -> list[int]:
        assert not rbac.can("export", "leads", access=rbac.access_for(world.members[key]))
        return [m.id for m in access_requests.grantors(
            rbac, world.ws.id, "export", "leads", requester=world.members[key].id)]

    assert manager.id in named("member")
    assert manager.id not in named("member2")
    assert world.members["owner"].id in named("member2")
    for key, shown in (("member", True), ("member2", False)):
        help_ = access_requests.refusal_help(rbac, rbac.access_for(world.members[key]),
                                             "export", "leads")
        assert help_ is not None and ("Manager" in help_.text) is shown, help_.text


@pytest.mark.parametrize(("action", "resource"), [("manage", "members"), ("manage", "roles"),
                                                  ("manage", "settings"),
                                                  ("decide", "approvals")])
def test_a_privileged_permission_is_asked_of_owners_only(world: SimpleNamespace, action: str,
                                                         resource: str) -> None:
    """Only an Owner gives a role that manages members, roles or settings, so an access
    request for one names and notifies Owners, never the Admins who would be refused."""
    viewer = world.members["viewer"]
    named = access_requests.grantors(rbac, world.ws.id, action, resource, requester=viewer.id)
    assert world.members["owner"].id in [m.id for m in named]
    assert all(rbac.access_for(m).is_owner for m in named), [m.display_name for m in named]
    help_ = access_requests.refusal_help(rbac, rbac.access_for(viewer), action, resource)
    assert help_ is not None and "Admin" not in help_.text, help_.text
    # A permission an Admin may give is still asked of them.
    assert world.members["admin"].id in [m.id for m in access_requests.grantors(
        rbac, world.ws.id, "export", "leads", requester=viewer.id)]
