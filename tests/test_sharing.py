"""Sharing agreements: isolation, each shared action, the intersection with
the member's own role, conditions, expiry, revocation, who may change what, the
pages, the API, the CLI and the audit trail on both sides.

The world's "Acme Sales" (``w.ws``) shares with "Beta Education" (``w.ws2``),
where ``dual`` is Owner, ``outsider`` a Member, and the tests add a Viewer.
"""

from __future__ import annotations

import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import markupsafe
import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client, Lead, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, sharing, tokens, workspaces
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import (
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
    give_role,
)
from tests.test_api import Api

NORTH = [{"field": "region", "value": "north"}]


@pytest.fixture
def beta(world: SimpleNamespace) -> SimpleNamespace:
    """Workspace 2's members: its Owner, a Member (own scope) and a Viewer (view all)."""
    viewer = User(email="beta.viewer@example.test", name="Beta Viewer")
    viewer.password_hash = world.users["owner"].password_hash
    db.session.add(viewer)
    db.session.flush()
    viewer_m = workspaces.add_member(rbac, world.ws2, viewer, ["viewer"])
    db.session.commit()
    return SimpleNamespace(owner=world.users["dual"], member=world.users["outsider"],
                           viewer=viewer, viewer_m=viewer_m)


def access_of(world: SimpleNamespace, ws: Any, user: Any) -> Any:
    m = rbac.models
    membership = db.session.scalar(sa.select(m.Membership).where(
        m.Membership.workspace_id == ws.id, m.Membership.user_id == user.id))
    return rbac.access_for(membership)


def owner_access(world: SimpleNamespace) -> Any:
    return rbac.access_for(world.members["owner"])


def agree(world: SimpleNamespace, permissions: list[Any], *, accept: bool = True,
          **options: Any) -> Any:
    """Acme's Owner offers Beta ``permissions``; Beta's Owner accepts (by default)."""
    agreement = sharing.create_agreement(rbac, owner_access(world), workspace="beta",
                                         permissions=permissions, **options)
    db.session.commit()
    if accept:
        with rbac.as_member(access_of(world, world.ws2, world.users["dual"])) as dual:
            sharing.accept(rbac, dual, agreement)
            db.session.commit()
    return agreement


def acme_clients(world: SimpleNamespace) -> dict[str, Any]:
    return {c.name: c for c in world.clients.values()}


def names_in(text: str, records: Any) -> set[str]:
    """Names of ``records`` whose row (``data-id``) or name is on the page."""
    return {str(r.name) for r in records
            if f'data-id="{r.id}"' in text or f">{r.name}<" in text}


# -- isolation ---------------------------------------------------------------------------


def test_no_agreement_no_access_anywhere(app: Flask, world: SimpleNamespace,
                                         beta: SimpleNamespace, login: Any) -> None:
    """Without an agreement in force (none, or one still pending), Beta reads nothing of Acme."""
    agree(world, ["clients.view", "leads.view"], accept=False)  # pending: shares nothing
    clients, leads = list(world.clients.values()), list(world.leads.values())
    for user in (beta.owner, beta.member, beta.viewer):
        client = login(user, world.ws2)
        for url, records in (("/clients/", clients), ("/leads/", leads),
                             ("/clients/export.csv", clients), ("/leads/export.csv", leads),
                             ("/admin/client/", clients), ("/admin/lead/", leads)):
            response = client.get(url)
            assert not names_in(response.text, records), (user.email, url)
        for record in clients:
            for url in (f"/clients/{record.id}", f"/clients/{record.id}/edit",
                        f"/admin/client/details/?id={record.id}",
                        f"/admin/client/edit/?id={record.id}"):
                response = client.get(url)
                assert response.status_code in (302, 403, 404), (url, response.status_code)
                assert record.name not in response.text, url
    membership = db.session.get(rbac.models.Membership,
                                access_of(world, world.ws2, beta.owner).membership_id)
    _, plaintext = tokens.create_token(rbac, membership, "isolation")
    db.session.commit()
    api = Api(app, plaintext)
    listed = api.get("/records/clients?per_page=100").json["items"]
    assert {c["id"] for c in listed} == {world.other["client"].id}
    assert api.get(f"/records/clients/{world.clients['member'].id}").status_code == 404
    access = access_of(world, world.ws2, beta.owner)
    assert not rbac.can("view", "clients", world.clients["member"], access=access)
    with rbac.as_member(access):
        assert db.session.scalars(sa.select(Client).where(
            Client.workspace_id == world.ws.id)).all() == []


# -- shared records ----------------------------------------------------------------------


def test_shared_records_follow_the_agreement_and_its_condition(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    agreement = agree(world, [{"resource": "clients", "action": "view", "condition": NORTH}],
                      notes="northern accounts")
    north = {c.name for c in world.clients.values() if c.region == "north"}
    south = {c.name for c in world.clients.values() if c.region != "north"}
    assert north and south
    page = login(beta.owner, world.ws2).get("/clients/?per_page=100")
    assert page.status_code == 200
    shown = names_in(page.text, world.clients.values())
    assert shown == north  # and Beta's own client
    assert world.other["client"].name in page.text
    assert page.text.count("Shared by Acme Sales") == len(north)

    access = access_of(world, world.ws2, beta.owner)
    record = next(c for c in world.clients.values() if c.region == "north")
    decision = rbac.explain("view", "clients", record, access=access)
    assert decision.allowed and decision.agreement_id == agreement.id
    assert f"agreement #{agreement.id}" in decision.reason and "Acme Sales" in decision.reason
    southern = next(c for c in world.clients.values() if c.region != "north")
    refused = rbac.explain("view", "clients", southern, access=access)
    assert not refused.allowed and "does not share view" in refused.reason
    detail = login(beta.owner, world.ws2).get(f"/clients/{record.id}")
    assert detail.status_code == 200 and f"agreement #{agreement.id}" in detail.text
    assert login(beta.owner, world.ws2).get(f"/clients/{southern.id}").status_code == 404
    # Leads are not shared at all.
    assert not names_in(login(beta.owner, world.ws2).get("/leads/").text,
                        world.leads.values())


def test_sharing_never_gives_more_than_the_members_role(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    """The agreement shares edit; Beta's Viewer still cannot edit, and its Member
    (own scope) sees none of Acme's records, which Beta's users do not own."""
    agree(world, ["clients.view", "clients.edit"])
    record = world.clients["member"]
    viewer = access_of(world, world.ws2, beta.viewer)
    member = access_of(world, world.ws2, beta.member)
    owner = access_of(world, world.ws2, beta.owner)
    assert rbac.can("view", "clients", record, access=viewer)
    assert not rbac.can("edit", "clients", record, access=viewer)
    assert "your own role does not allow it" in rbac.explain(
        "edit", "clients", record, access=viewer).reason
    assert not rbac.can("view", "clients", record, access=member)
    assert rbac.can("edit", "clients", record, access=owner)
    assert not rbac.can("delete", "clients", record, access=owner)  # not shared
    response = login(beta.viewer, world.ws2).post(f"/clients/{record.id}/edit",
                                                  data={"name": "Viewer was here"})
    assert response.status_code == 403
    db.session.expire_all()
    assert db.session.get(Client, record.id).name == "Client of member"
    # A record the member owns is in their own scope, shared or not.
    with rbac.system():
        record.owner_id = beta.member.id
        db.session.commit()
    assert rbac.can("view", "clients", record, access=access_of(world, world.ws2, beta.member))


def test_each_shared_action_through_the_app(world: SimpleNamespace, beta: SimpleNamespace,
                                            login: Any) -> None:
    agreement = agree(world, ["leads.view", "leads.edit", "leads.delete", "leads.export"])
    owner = login(beta.owner, world.ws2)
    lead, doomed = world.leads["member"], world.leads["member2"]
    doomed_id = doomed.id
    response = owner.post(f"/leads/{lead.id}/edit", data={
        "name": "Edited from Beta", "status": lead.status or "new", "email": "",
        "source": "", "owner_id": str(lead.owner_id)})
    assert response.status_code == 302, response.text[:500]
    assert owner.post(f"/leads/{doomed.id}/delete").status_code == 302
    export = owner.get("/leads/export.csv")
    assert export.status_code == 200 and "Edited from Beta" in export.text
    db.session.expire_all()
    assert db.session.get(Lead, lead.id).name == "Edited from Beta"
    with rbac.system():
        assert db.session.get(Lead, doomed_id) is None
    # Audited on both sides: the writes and the export.
    A = rbac.models.AuditEvent
    writes = db.session.scalars(sa.select(A).where(A.action == "shared.write")).all()
    assert {e.workspace_id for e in writes} == {world.ws.id, world.ws2.id}
    assert all(agreement.id in e.detail["agreement_ids"] for e in writes)
    assert any(c["op"] == "deleted" and c["id"] == doomed_id
               for e in writes for c in e.detail["changes"])
    granting_export = db.session.scalars(sa.select(A).where(
        A.action == "shared.export", A.workspace_id == world.ws.id)).all()
    own_export = db.session.scalars(sa.select(A).where(
        A.action == "export", A.workspace_id == world.ws2.id)).all()
    shared_rows = len(world.leads) - 1
    assert granting_export and granting_export[-1].detail["rows"] == shared_rows
    assert own_export[-1].detail["shared_rows"] == {str(world.ws.id): shared_rows}


def test_create_and_reassign_never_cross_workspaces(world: SimpleNamespace,
                                                    beta: SimpleNamespace) -> None:
    agree(world, ["clients.view", "clients.edit", "tasks.view"])
    owner = access_of(world, world.ws2, beta.owner)
    shared_client = world.clients["member"]
    with rbac.as_member(owner):
        db.session.add(Task(title="Beta task on an Acme client", client_id=shared_client.id))
        with pytest.raises(PermissionDenied, match="belongs to another workspace"):
            db.session.flush()
        db.session.rollback()
        db.session.add(Client(workspace_id=world.ws.id, name="Planted in Acme"))
        with pytest.raises(PermissionDenied):
            db.session.flush()
        db.session.rollback()
        client = db.session.get(Client, shared_client.id)
        client.owner_id = beta.owner.id  # taking it over needs manage, never shared
        with pytest.raises(PermissionDenied):
            db.session.flush()
        db.session.rollback()


def test_shared_edit_never_links_records_across_workspaces(world: SimpleNamespace,
                                                           beta: SimpleNamespace,
                                                           login: Any) -> None:
    """Shared edit on deals (and invoices) changes their fields, not what they point at:
    a shared deal pointed at the receiving side's client would tie the granting
    workspace's record to data it cannot see (and let the receiver rewire it). The
    same holds the other way: a record of one's own workspace on a shared client."""
    from crm_app.accounting.models import Invoice
    from crm_app.models import Deal

    agree(world, ["deals.view", "deals.edit", "clients.view", "invoices.view",
                  "invoices.edit"])
    owner = access_of(world, world.ws2, beta.owner)
    acme_deal = world.deals["member-new"]
    with rbac.system():
        acme_deal.client_id = world.clients["member"].id
        beta_client = Client(workspace_id=world.ws2.id, name="Beta's own client",
                             owner_id=beta.owner.id)
        beta_deal = Deal(workspace_id=world.ws2.id, title="Beta's own deal",
                         owner_id=beta.owner.id)
        invoice = Invoice(workspace_id=world.ws.id, number="INV-X",
                          client_id=acme_deal.client_id, deal_id=acme_deal.id,
                          owner_id=world.users["member"].id)
        db.session.add_all([beta_client, beta_deal, invoice])
        db.session.commit()
    ids = (beta_client.id, beta_deal.id, invoice.id, acme_deal.id)
    was = acme_deal.client_id
    with rbac.as_member(owner):
        for model, key, value, column in ((Deal, ids[3], ids[0], "client_id"),
                                          (Invoice, ids[2], ids[0], "client_id"),
                                          (Invoice, ids[2], ids[1], "deal_id")):
            record = db.session.get(model, key)
            assert record is not None
            setattr(record, column, value)
            with pytest.raises(PermissionDenied, match="belongs to another workspace"):
                db.session.flush()
            db.session.rollback()
        record = db.session.get(Deal, ids[1])  # Beta's deal on a client Acme shares
        record.client_id = world.clients["member"].id
        with pytest.raises(PermissionDenied, match="belongs to another workspace"):
            db.session.flush()
        db.session.rollback()
        record = db.session.get(Deal, ids[3])  # a field of the shared deal: allowed
        record.title = "Renamed from Beta"
        db.session.flush()
        db.session.rollback()
    page = login(beta.owner, world.ws2).post(f"/deals/{ids[3]}/edit", data={
        "title": acme_deal.title, "stage": acme_deal.stage, "amount": str(acme_deal.amount),
        "client_id": str(ids[0])})
    assert page.status_code == 403, page.status_code
    db.session.expire_all()
    assert db.session.get(Deal, ids[3]).client_id == was


def test_nobody_shares_a_field_hidden_from_them(world: SimpleNamespace) -> None:
    """A member whose role hides deal amounts, with settings.manage, offers deals.view to
    another workspace (one they may own themselves): its roles, not theirs, decide the
    fields its members see, so the amounts would reach it. The offer is refused; edit
    is refused for a read-only field the same way."""
    role = custom_role(world, "Deals, no amounts", [
        ("deals", "view", "all"), ("deals", "edit", "all"), ("settings", "view", "all"),
        ("settings", "manage", "all")])
    db.session.add(rbac.models.FieldRule(role=role, resource="deals", field="amount",
                                         mode="hidden"))
    member = world.members["client_success"]
    for mr in list(member.member_roles):
        db.session.delete(mr)
    db.session.flush()
    give_role(member, role)
    db.session.commit()
    actor = rbac.access_for(member)
    assert "amount" in actor.hidden("deals")
    for permissions in (["deals.view"], ["deals.view", "deals.edit"]):
        with pytest.raises(PermissionDenied, match="amount of deals is hidden from you"):
            sharing.create_agreement(rbac, actor, workspace="beta", permissions=permissions)
        db.session.rollback()
    rule = db.session.scalars(sa.select(rbac.models.FieldRule).where(
        rbac.models.FieldRule.role_id == role.id)).one()
    rule.mode = "readonly"
    db.session.commit()
    actor = rbac.access_for(member)
    with pytest.raises(PermissionDenied, match="amount of deals is read-only for you"):
        sharing.create_agreement(rbac, actor, workspace="beta",
                                 permissions=["deals.view", "deals.edit"])
    db.session.rollback()
    offered = sharing.create_agreement(rbac, actor, workspace="beta",
                                       permissions=["deals.view"])  # nothing hidden now
    assert offered.id is not None
    db.session.rollback()


# -- expiry and revocation --------------------------------------------------------------


def test_expiry_ends_access_even_from_the_cache(world: SimpleNamespace, beta: SimpleNamespace,
                                                login: Any, monkeypatch: pytest.MonkeyPatch
                                                ) -> None:
    ends = utcnow() + dt.timedelta(hours=1)
    agree(world, ["clients.view"], expires_at=ends)
    client = login(beta.owner, world.ws2)
    assert world.clients["member"].name in client.get("/clients/?per_page=100").text
    later = ends + dt.timedelta(seconds=1)
    for module in ("crm_rbac_plugin.identity", "crm_rbac_plugin.loader"):
        monkeypatch.setattr(f"{module}.utcnow", lambda: later)
    assert world.clients["member"].name not in client.get("/clients/?per_page=100").text
    agreement = db.session.scalar(sa.select(rbac.models.SharingAgreement))
    assert sharing.state(agreement, later) == "expired"


def test_revoking_takes_effect_on_the_next_request(world: SimpleNamespace,
                                                   beta: SimpleNamespace, login: Any) -> None:
    agreement = agree(world, ["clients.view"])
    reader = login(beta.viewer, world.ws2)
    assert world.clients["member"].name in reader.get("/clients/?per_page=100").text
    version = db.session.get(rbac.models.Workspace, world.ws2.id).policy_version
    acme_owner = login(world.users["owner"], world.ws)
    assert acme_owner.post(f"/settings/sharing/{agreement.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(rbac.models.SharingAgreement, agreement.id).status == "revoked"
    # Every process sees the bumped version on its next request (cf. test_multiworker).
    assert db.session.get(rbac.models.Workspace, world.ws2.id).policy_version > version
    assert world.clients["member"].name not in reader.get("/clients/?per_page=100").text


def test_leaving_and_declining(world: SimpleNamespace, beta: SimpleNamespace,
                               login: Any) -> None:
    agreement = agree(world, ["clients.view"])
    dual = login(beta.owner, world.ws2)
    assert dual.post(f"/settings/sharing/{agreement.id}/leave").status_code == 302
    assert world.clients["member"].name not in dual.get("/clients/?per_page=100").text
    second = agree(world, ["clients.view"], accept=False)
    assert dual.post(f"/settings/sharing/{second.id}/decline").status_code == 302
    db.session.expire_all()
    assert [a.status for a in sharing.agreements(rbac, world.ws.id, "granting")] == [
        "declined", "left"]


# -- who may change what ----------------------------------------------------------------


def test_rules_of_who_may_change_an_agreement(world: SimpleNamespace,
                                              beta: SimpleNamespace, login: Any) -> None:
    acme = owner_access(world)
    beta_owner = access_of(world, world.ws2, beta.owner)
    agreement = agree(world, ["clients.view"], accept=False)
    # Only the granting side edits, widens or revokes; only the receiving side accepts.
    with pytest.raises(PermissionDenied):
        sharing.update_agreement(rbac, beta_owner, agreement,
                                 permissions=["clients.view", "clients.delete"])
    with pytest.raises(PermissionDenied):
        sharing.revoke(rbac, beta_owner, agreement)
    with pytest.raises(PermissionDenied):
        sharing.accept(rbac, acme, agreement)
    # Beta can only ever offer its *own* data: an agreement it creates grants from Beta.
    reverse = sharing.create_agreement(rbac, beta_owner, workspace="acme",
                                       permissions=["clients.view"])
    assert reverse.granting_workspace_id == world.ws2.id
    db.session.rollback()
    # Members without settings.manage, and a custom role holding less than it shares.
    with pytest.raises(PermissionDenied):
        sharing.create_agreement(rbac, rbac.access_for(world.members["manager"]),
                                 workspace="beta", permissions=["clients.view"])
    role = rbac.models.Role(workspace=world.ws, name="Settings only")
    workspaces.add_grant(rbac, role, "settings", "manage")
    workspaces.add_grant(rbac, role, "settings", "view")
    workspaces.add_grant(rbac, role, "leads", "view", "own")
    db.session.add(role)
    db.session.flush()
    workspaces.assign_role(rbac, world.members["member2"], role)
    db.session.commit()
    narrow = rbac.access_for(world.members["member2"])
    with pytest.raises(PermissionDenied, match="more than you hold"):
        sharing.create_agreement(rbac, narrow, workspace="beta", permissions=["leads.view"])
    db.session.rollback()
    # The same refusal through the page: a 403 with the message, nothing written.
    stored = sa.select(rbac.models.SharingAgreement.id).order_by(rbac.models.SharingAgreement.id)
    before = db.session.scalars(stored).all()
    page = login(world.users["member2"], world.ws).post("/settings/sharing/new", data={
        "workspace": "beta", "share__leads__view": "y"})
    assert page.status_code == 403 and "more than you hold" in page.text
    assert db.session.scalars(stored).all() == before == [agreement.id]


def test_lengthening_or_removing_the_expiry_needs_the_shared_actions(
        app: Flask, world: SimpleNamespace, beta: SimpleNamespace) -> None:
    """A later expiry, or none, shares the same actions longer: the actor must hold them."""
    soon = utcnow().replace(microsecond=0) + dt.timedelta(hours=2)
    agreement = agree(world, ["clients.view"], expires_at=soon)
    role = rbac.models.Role(workspace=world.ws, name="Settings only")
    for action in ("manage", "view"):
        workspaces.add_grant(rbac, role, "settings", action)
    db.session.add(role)
    db.session.flush()
    workspaces.assign_role(rbac, world.members["member2"], role)  # clients.view own only
    _, plaintext = tokens.create_token(rbac, world.members["member2"], "sharing")
    db.session.commit()
    aid, narrow = agreement.id, Api(app, plaintext)
    for expiry in ("2099-01-01T00:00:00Z", None):
        answer = narrow.patch(f"/sharing/{aid}", {"expires_at": expiry})
        assert answer.status_code == 403, answer.json
        assert "more than you hold" in answer.json["message"]
        assert "clients.view" in answer.json["message"]
    db.session.expire_all()
    assert db.session.get(rbac.models.SharingAgreement, aid).expires_at == soon
    # Ending it sooner narrows it: no shared action is needed for that.
    sooner = (soon - dt.timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert narrow.patch(f"/sharing/{aid}", {"expires_at": sooner}).status_code == 200


@pytest.mark.parametrize("permissions, field", [
    (["clients.create", "clients.view"], "permissions[0]"),
    (["clients.view", "clients.manage"], "permissions[1]"),
    (["clients.edit"], "permissions"),
    (["members.view"], "permissions[0]"),
    (["galaxies.view"], "permissions[0]"),
    ([{"resource": "clients", "action": "view",
       "condition": [{"field": "nope", "value": 1}]}], "permissions[0].condition"),
    ([], "permissions"),
    ("clients.view", "permissions"),
    # The entry checks shared with roles' grants (roles.permission_items).
    ([5], "permissions[0]"),
    ([{"resource": "clients", "action": "view", "scope": "all"}], "permissions[0]"),
    ([{"resource": 5, "action": "view"}], "permissions[0]"),
    (["clients.view", "clients.view"], "permissions[1]"),
])
def test_bad_agreements_are_refused(world: SimpleNamespace, permissions: Any,
                                    field: str) -> None:
    with pytest.raises(ValidationError) as info:
        sharing.create_agreement(rbac, owner_access(world), workspace="beta",
                                 permissions=permissions)
    assert info.value.field == field


def test_bad_targets_and_duplicates(world: SimpleNamespace) -> None:
    acme = owner_access(world)
    for target, message in (("acme", "itself"), ("nowhere", "No workspace named nowhere")):
        with pytest.raises(ValidationError, match=message):
            sharing.create_agreement(rbac, acme, workspace=target,
                                     permissions=["clients.view"])
    with pytest.raises(ValidationError, match="future"):
        sharing.create_agreement(rbac, acme, workspace="beta", permissions=["clients.view"],
                                 expires_at=utcnow() - dt.timedelta(days=1))
    agree(world, ["clients.view"], accept=False)
    with pytest.raises(ValidationError, match="still open"):
        sharing.create_agreement(rbac, acme, workspace="beta", permissions=["leads.view"])


# -- pages, API, CLI ------------------------------------------------------------------


def test_pages_show_both_sides(world: SimpleNamespace, beta: SimpleNamespace,
                               login: Any) -> None:
    acme = login(world.users["owner"], world.ws)
    assert acme.get("/settings/sharing/new").status_code == 200
    response = acme.post("/settings/sharing/new", data={
        "workspace": "beta", "notes": "North only", "share__clients__view": "y",
        "cond__clients": '[{"field": "region", "value": "north"}]'})
    assert response.status_code == 302, response.text[:500]
    agreement = db.session.scalar(sa.select(rbac.models.SharingAgreement))
    assert agreement.permissions[0].condition == [{**NORTH[0], "op": "eq"}]
    by_you = acme.get("/settings/sharing")
    assert "Beta Education" in by_you.text and "region" in by_you.text
    with_you = login(beta.owner, world.ws2).get("/settings/sharing?tab=with")
    assert "Acme Sales" in with_you.text and "Accept" in with_you.text
    # Bad input: a 400 naming the problem, nothing written.
    bad = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__clients__edit": "y"})
    assert bad.status_code == 400 and "needs view" in bad.text
    bad_json = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__clients__view": "y", "cond__clients": "{nope"})
    assert bad_json.status_code == 400 and "not valid JSON" in bad_json.text
    db.session.expire_all()
    assert [p.permission for p in agreement.permissions] == ["clients.view"]
    saved = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__clients__view": "y", "share__clients__edit": "y", "notes": "North, editable"})
    assert saved.status_code == 302 and saved.location.endswith("/settings/sharing")
    db.session.expire_all()
    assert sorted(p.permission for p in agreement.permissions) == ["clients.edit",
                                                                   "clients.view"]
    assert agreement.notes == "North, editable"
    # The receiving side cannot open the edit page; a viewer cannot manage at all.
    assert login(beta.owner, world.ws2).get(
        f"/settings/sharing/{agreement.id}/edit").status_code == 404
    assert login(world.users["viewer"], world.ws).get("/settings/sharing").status_code == 403


def test_api_follows_the_same_rules(app: Flask, world: SimpleNamespace,
                                    beta: SimpleNamespace) -> None:
    def api_of(membership: Any) -> Api:
        _, plaintext = tokens.create_token(rbac, membership, "sharing")
        db.session.commit()
        return Api(app, plaintext)

    acme = api_of(world.members["owner"])
    beta_m = db.session.get(rbac.models.Membership,
                            access_of(world, world.ws2, beta.owner).membership_id)
    beta_api = api_of(beta_m)
    created = acme.post("/sharing", {"workspace": "beta", "permissions": [
        "clients.view", {"resource": "clients", "action": "edit", "condition": NORTH}]})
    assert created.status_code == 201, created.json
    aid = created.json["id"]
    assert created.json["status"] == "pending"
    assert beta_api.get("/sharing").json["shared_with_you"][0]["id"] == aid
    assert beta_api.patch(f"/sharing/{aid}", {"notes": "mine now"}).status_code == 403
    assert acme.post(f"/sharing/{aid}/accept", {}).status_code == 403
    assert beta_api.post(f"/sharing/{aid}/accept", {}).json["status"] == "active"
    assert acme.patch(f"/sharing/{aid}", {"workspace": "acme"}).status_code == 400
    assert acme.post("/sharing", {"workspace": "beta", "permissions": ["clients.view"],
                                  "extra": 1}).status_code == 400
    outsider_api = api_of(world.members["viewer"])
    assert outsider_api.post("/sharing", {"workspace": "beta",
                                          "permissions": ["clients.view"]}).status_code == 403
    # Beta's Viewer cannot see agreements; workspace 3 would get a 404 for the id.
    assert outsider_api.get(f"/sharing/{aid}").status_code in (200, 403)
    assert acme.post(f"/sharing/{aid}/revoke", {}).json["status"] == "revoked"
    assert acme.post(f"/sharing/{aid}/revoke", {}).status_code == 400


def test_cli(app: Flask, world: SimpleNamespace, beta: SimpleNamespace) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["rbac", "sharing", "create", "--workspace", "acme",
                                 "--with", "beta", "--permission", "clients.view",
                                 "--condition", '{"clients.view": [{"field": "region", '
                                                '"value": "north"}]}', "--notes", "cli"])
    assert result.exit_code == 0, result.output
    assert "pending" in result.output and "where region = north" in result.output
    aid = db.session.scalar(sa.select(rbac.models.SharingAgreement.id))
    refused = runner.invoke(args=["rbac", "sharing", "end", "--workspace", "acme",
                                  "accept", str(aid)])
    assert refused.exit_code != 0 and "Only the workspace it is shared with" in refused.output
    accepted = runner.invoke(args=["rbac", "sharing", "end", "--workspace", "beta",
                                   "accept", str(aid)])
    assert accepted.exit_code == 0 and "active" in accepted.output, accepted.output
    listed = runner.invoke(args=["rbac", "sharing", "list", "--workspace", "beta"])
    assert "Shared with you:" in listed.output and "acme -> beta" in listed.output
    bad = runner.invoke(args=["rbac", "sharing", "create", "--workspace", "acme", "--with",
                              "beta", "--permission", "clients.create"])
    assert bad.exit_code != 0 and "cannot be shared" in bad.output


def test_agreement_changes_are_audited_on_both_sides(world: SimpleNamespace,
                                                     beta: SimpleNamespace) -> None:
    agreement = agree(world, ["clients.view"])
    sharing.revoke(rbac, owner_access(world), agreement)
    db.session.commit()
    A = rbac.models.AuditEvent
    events = db.session.scalars(sa.select(A).where(A.action.like("sharing.%"))
                                .order_by(A.id)).all()
    for ws in (world.ws.id, world.ws2.id):
        assert [e.action for e in events if e.workspace_id == ws] == [
            "sharing.created", "sharing.accepted", "sharing.revoked"]
    accepted = next(e for e in events if e.action == "sharing.accepted")
    assert accepted.actor_user_id == world.users["dual"].id


def test_explain_names_the_agreement(app: Flask, world: SimpleNamespace,
                                     beta: SimpleNamespace, login: Any) -> None:
    agreement = agree(world, ["clients.view", "clients.edit"])
    record = world.clients["member"]
    out = app.test_cli_runner().invoke(args=[
        "rbac", "explain", "--user", "dual@example.test", "--workspace", "beta",
        "--record", str(record.id), "clients.edit"]).output
    assert out.startswith("ALLOWED"), out
    assert f"allowed through sharing agreement #{agreement.id}" in out
    assert "sharing: agreement" in out and "clients.edit" in out
    viewer = app.test_cli_runner().invoke(args=[
        "rbac", "explain", "--user", "beta.viewer@example.test", "--workspace", "beta",
        "--record", str(record.id), "clients.edit"]).output
    assert viewer.startswith("DENIED") and "your own role does not allow it" in viewer
    page = login(beta.owner, world.ws2).get(
        f"/settings/explain?member={access_of(world, world.ws2, beta.viewer).membership_id}"
        f"&resource=clients&action=edit&record={record.id}")
    assert page.status_code == 200, page.text[:300]
    assert f"agreement #{agreement.id}" in page.text and "own role does not allow" in page.text
    with rbac.system():
        beta_only = Client(workspace_id=world.ws.id, name="Never shared", region="south")
        db.session.add(beta_only)
        db.session.commit()
    agreement_south = sharing.agreements(rbac, world.ws.id, "granting")[0]
    sharing.update_agreement(rbac, owner_access(world), agreement_south,
                             permissions=[{"resource": "clients", "action": "view",
                                           "condition": NORTH}])
    db.session.commit()
    refused = login(beta.owner, world.ws2).get(
        f"/settings/explain?member={access_of(world, world.ws2, beta.viewer).membership_id}"
        f"&resource=clients&action=view&record={beta_only.id}")
    assert refused.status_code == 400 and "Never shared" not in refused.text


def test_who_could_includes_members_of_workspaces_it_was_shared_with(
        world: SimpleNamespace, beta: SimpleNamespace) -> None:
    from crm_rbac_plugin.oversight import history

    record = world.clients["member"]
    agreement = agree(world, ["clients.view"])
    between = utcnow()
    with rbac.as_member(owner_access(world)) as acme:
        sharing.revoke(rbac, acme, agreement)
        db.session.commit()
    then = history.who_could(rbac, world.ws.id, "clients", record.id, between)
    shared = {a.user: a for a in then.answers if a.workspace == "Beta Education"}
    assert shared["Dual"].allowed and f"agreement #{agreement.id}" in shared["Dual"].reason
    assert shared["Beta Viewer"].allowed
    assert not shared["Outsider"].allowed  # a Member: own scope, owns none of Acme's
    assert any(a.allowed and not a.workspace for a in then.answers)  # Acme's own members
    now = history.who_could(rbac, world.ws.id, "clients", record.id, utcnow())
    assert not [a for a in now.answers if a.workspace]


def test_bulk_statements_never_touch_shared_records(world: SimpleNamespace,
                                                    beta: SimpleNamespace) -> None:
    """A bulk UPDATE or DELETE acts on the member's own workspace only: shared records
    change one by one, through the flush guard, audited on both sides. Even Beta's
    Owner (whose bulk updates may set owners) cannot reassign or delete Acme's."""
    agree(world, ["clients.view", "clients.edit", "clients.delete"])
    acme_ids = sorted(c.id for c in world.clients.values())
    owner = access_of(world, world.ws2, beta.owner)
    with rbac.as_member(owner):
        db.session.execute(sa.update(Client).values(owner_id=beta.owner.id),
                           execution_options={"synchronize_session": False})
        db.session.execute(sa.delete(Client).where(Client.name.like("Client of %")),
                           execution_options={"synchronize_session": False})
        db.session.commit()
    db.session.expire_all()
    with rbac.system():
        rows = db.session.execute(sa.select(Client.id, Client.owner_id).where(
            Client.workspace_id == world.ws.id).order_by(Client.id)).all()
        theirs = db.session.get(Client, world.other["client"].id)
    assert [r.id for r in rows] == acme_ids
    assert beta.owner.id not in {r.owner_id for r in rows}
    assert theirs.owner_id == beta.owner.id  # Beta's own client was updated


# -- what the receiving side agreed to; what a probe learns ------------------------------
# Widening an active agreement, or reviving an expired one, offers it again; a workspace
# id names only one the actor belongs to, and the terms are checked first; another
# workspace's unassigned records are not "visible to all" in the receiving workspace.


def _status(agreement: Any) -> str:
    db.session.expire_all()
    return str(db.session.get(rbac.models.SharingAgreement, agreement.id).status)


def _offers(workspace_id: int) -> int:
    N = rbac.models.Notification
    return int(db.session.scalar(sa.select(sa.func.count()).select_from(N).where(
        N.workspace_id == workspace_id, N.event == "sharing.offered")) or 0)


def test_widening_an_active_agreement_offers_it_again(
        world: SimpleNamespace, beta: SimpleNamespace) -> None:
    agreement = agree(world, ["clients.view"])
    record = world.clients["member"]
    offers = _offers(world.ws2.id)
    sharing.update_agreement(rbac, owner_access(world), agreement,
                             permissions=["clients.view", "clients.edit"])
    db.session.commit()
    assert _status(agreement) == "pending"
    assert _offers(world.ws2.id) == offers + 1
    owner = access_of(world, world.ws2, beta.owner)
    assert not rbac.can("view", "clients", record, access=owner)  # nothing until accepted
    with rbac.as_member(owner) as dual:
        sharing.accept(rbac, dual, db.session.get(rbac.models.SharingAgreement, agreement.id))
        db.session.commit()
    owner = access_of(world, world.ws2, beta.owner)
    assert rbac.can("edit", "clients", record, access=owner)


def test_a_looser_condition_is_wider_and_a_narrower_change_applies_at_once(
        world: SimpleNamespace, beta: SimpleNamespace) -> None:
    north = [{"field": "region", "value": "north"}]
    agreement = agree(world, [{"resource": "clients", "action": "view", "condition": north},
                              "clients.edit"])
    sharing.update_agreement(rbac, owner_access(world), agreement,
                             permissions=[{"resource": "clients", "action": "view",
                                           "condition": north}])
    db.session.commit()
    assert _status(agreement) == "active"  # edit dropped: narrower
    sharing.update_agreement(rbac, owner_access(world), agreement, permissions=["clients.view"])
    db.session.commit()
    assert _status(agreement) == "pending"  # the condition dropped: wider


def test_reviving_an_expired_agreement_offers_it_again_a_later_date_does_not(
        world: SimpleNamespace, beta: SimpleNamespace) -> None:
    soon = utcnow().replace(microsecond=0) + dt.timedelta(hours=2)
    agreement = agree(world, ["clients.view"], expires_at=soon)
    sharing.update_agreement(rbac, owner_access(world), agreement,
                             expires_at=soon + dt.timedelta(days=3))
    db.session.commit()
    assert _status(agreement) == "active"  # still running: the same terms, longer
    with rbac.system():
        db.session.get(rbac.models.SharingAgreement, agreement.id).expires_at = \
            utcnow() - dt.timedelta(minutes=1)
        db.session.commit()
    sharing.update_agreement(rbac, owner_access(world), agreement,
                             expires_at=utcnow() + dt.timedelta(days=30))
    db.session.commit()
    assert _status(agreement) == "pending"


def test_an_id_names_only_a_workspace_the_actor_belongs_to(
        world: SimpleNamespace, beta: SimpleNamespace) -> None:
    """Acme's Owner is no member of Beta: Beta's id reads as an unknown one."""
    acme = owner_access(world)
    missing = world.ws2.id + 1000
    answers = []
    for ref in (world.ws2.id, missing):
        with pytest.raises(ValidationError) as info:
            sharing.create_agreement(rbac, acme, workspace=ref, permissions=["clients.view"])
        answers.append((info.value.field, info.value.message.replace(str(ref), "N")))
    assert answers[0] == answers[1] == ("workspace", "No workspace named N.")
    # Bad terms are refused first, whichever id is named.
    for ref in (world.ws2.id, missing, "beta"):
        with pytest.raises(ValidationError) as info:
            sharing.create_agreement(rbac, acme, workspace=ref, permissions=[])
        assert info.value.field == "permissions"
    # By slug or name it is found; by id, for a member of both.
    assert sharing.find_workspace(rbac, "beta").id == world.ws2.id
    assert sharing.find_workspace(rbac, world.ws2.id, world.users["dual"].id).id == world.ws2.id


def test_the_api_does_not_walk_workspace_ids(app: Flask, world: SimpleNamespace,
                                              beta: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    bodies = [{"workspace": ref, "permissions": perms}
              for ref in (world.ws2.id, world.ws2.id + 1000)
              for perms in ([], ["clients.view"])]
    answers = [client.post("/api/v1/sharing", json=body) for body in bodies]
    assert [a.status_code for a in answers] == [400, 400, 400, 400]
    assert answers[0].json == answers[2].json  # no terms: the same refusal
    assert answers[1].json["field"] == answers[3].json["field"] == "workspace"
    assert rbac.models.SharingAgreement.query.count() == 0


def test_an_own_scope_member_sees_no_unassigned_shared_record(
        app: Flask, world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    agree(world, ["clients.view"])
    unowned = world.clients["unowned"]
    assert unowned.owner_id is None
    member = access_of(world, world.ws2, beta.member)
    assert not rbac.can("view", "clients", unowned, access=member)
    with rbac.as_member(member):
        listed = set(db.session.scalars(sa.select(Client.id)))
    assert unowned.id not in listed
    page = login(beta.member, world.ws2).get(f"/clients/{unowned.id}")
    assert page.status_code == 404
    # Beta's Viewer (view all) still sees it; Acme's own members see their pool.
    assert rbac.can("view", "clients", unowned, access=access_of(world, world.ws2, beta.viewer))
    assert rbac.can("view", "clients", unowned,
                    access=rbac.access_for(world.members["member"]))


def test_saving_the_edit_page_keeps_conditions_it_cannot_show(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    """The page shows one condition per resource; the API set one per action. Saving the
    notes alone keeps each action's; changing the shown condition sets it for all."""
    orbit = [*NORTH, {"field": "name", "value": "Orbitworks"}]
    agreement = agree(world, [{"resource": "clients", "action": "view", "condition": NORTH},
                              {"resource": "clients", "action": "edit", "condition": orbit}])

    def stored() -> dict[str, Any]:
        db.session.expire_all()
        return {p.action: p.condition for p in
                db.session.get(rbac.models.SharingAgreement, agreement.id).permissions}

    acme = login(world.users["owner"], world.ws)
    page = acme.get(f"/settings/sharing/{agreement.id}/edit")
    shown = json.dumps(stored()["view"])
    assert page.status_code == 200 and str(markupsafe.escape(shown)) in page.text
    before = stored()
    saved = acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__clients__view": "y", "share__clients__edit": "y",
        "cond__clients": shown, "notes": "typo fixed"})
    assert saved.status_code == 302, saved.text
    assert stored() == before and _status(agreement) == "active"
    acme.post(f"/settings/sharing/{agreement.id}/edit", data={
        "share__clients__view": "y", "share__clients__edit": "y",
        "cond__clients": json.dumps(orbit), "notes": "Orbitworks only"})
    after = stored()
    assert after["view"] == after["edit"] and len(after["view"]) == 2


def test_the_receiving_workspace_never_reads_the_sharers_people(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    """A shared record's owner is one of the sharing workspace's people: pages, the
    owner filter and the CSV name the workspace, never the person or their address."""
    agree(world, ["clients.view", "clients.export"])
    record = world.clients["member"]
    owner = world.users["member"]
    dual = login(world.users["dual"], world.ws2)
    page = dual.get(f"/clients/{record.id}")
    assert page.status_code == 200
    listing = dual.get("/clients/")
    csv = dual.get("/clients/export.csv")
    for text in (page.text, listing.text, csv.get_data(as_text=True)):
        assert owner.email not in text and owner.name not in text
    assert "Acme Sales" in page.text and "Acme Sales" in csv.get_data(as_text=True)
    assert f'value="{owner.id}"' not in listing.text  # not offered in the owner filter
