"""Campaigns link leads many-to-many; a hidden lead never comes through the link.

The world's Member (``member``) sees their own lead and the unowned one; the
leads of ``member2``, ``manager`` and ``junior_rep`` are hidden from them.
Every test links all five leads of the workspace to one campaign from
trusted code, then looks at the campaign as the Member through every path:
the relationship (lazy, ``selectinload``, ``joinedload``), a join in a
query, the link table itself, the page, the JSON API, the CSV export, and
the mails a send produces. Linking a hidden lead is refused at the route
(404 naming it) and at the flush (the plugin's link guard), with nothing
changed. Runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import smtplib
from types import SimpleNamespace
from typing import Any

import flask_mail
import pytest
import sqlalchemy as sa
from flask import Flask
from itsdangerous import URLSafeSerializer
from sqlalchemy.orm import joinedload, selectinload

from crm_app.campaigns import service
from crm_app.campaigns.models import Campaign, CampaignSend, CampaignUnsubscribe, campaign_lead
from crm_app.extensions import db, mail
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import PermissionDenied, roles, sharing, workspaces
from crm_rbac_plugin.team import reassignment
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

VISIBLE = {"Lead of member", "Lead of unowned"}
HIDDEN = {"Lead of member2", "Lead of manager", "Lead of junior_rep"}


@pytest.fixture
def camp(world: SimpleNamespace) -> SimpleNamespace:
    """A campaign of the Member's linked (by trusted code) to all five leads of ``w.ws``."""
    with rbac.system():
        for tag, lead in world.leads.items():
            lead.email = f"{tag}@leads.test"
        campaign = Campaign(workspace_id=world.ws.id, owner_id=world.users["member"].id,
                            name="Spring launch", subject="Spring", body="Hello there")
        campaign.leads = list(world.leads.values())
        db.session.add(campaign)
        db.session.commit()
        ids = {tag: lead.id for tag, lead in world.leads.items()}
        other_lead = world.other["lead"].id
        cid = campaign.id
    return SimpleNamespace(id=cid, lead_ids=ids, other_lead=other_lead,
                           member=world.members["member"].id, w=world)


def linked_ids(campaign_id: int) -> set[int]:
    """The lead ids linked to a campaign, read past every filter."""
    with rbac.system():
        return set(db.session.scalars(sa.select(campaign_lead.c.lead_id).where(
            campaign_lead.c.campaign_id == campaign_id)))


def names(leads: Any) -> set[str]:
    return {lead.name for lead in leads}


def grant_member(world: SimpleNamespace, resource: str, action: str, scope: str = "own") -> None:
    """Give the built-in Member role one more grant."""
    workspaces.add_grant(rbac, workspaces.role_by_key(rbac, world.ws, "member"), resource,
                         action, scope)
    db.session.commit()


# -- the relationship and queries --------------------------------------------------------------

@pytest.mark.parametrize("load", ["lazy", "selectin", "joined"])
def test_relationship_loads_never_yield_a_hidden_lead(camp: SimpleNamespace, load: str) -> None:
    options = {"lazy": (), "selectin": (selectinload(Campaign.leads),),
               "joined": (joinedload(Campaign.leads),)}[load]
    with rbac.as_member(camp.member):
        campaign = db.session.scalars(
            sa.select(Campaign).options(*options).where(Campaign.id == camp.id)).unique().one()
        assert names(campaign.leads) == VISIBLE
    with rbac.system():
        db.session.expunge_all()
        assert names(db.session.get(Campaign, camp.id).leads) == VISIBLE | HIDDEN


def test_a_join_through_the_relationship_yields_visible_leads_only(camp: SimpleNamespace) -> None:
    with rbac.as_member(camp.member):
        rows = db.session.execute(sa.select(Campaign.name, Lead.name).join(Campaign.leads)
                                  .where(Campaign.id == camp.id)).all()
        count = db.session.scalar(sa.select(sa.func.count(Lead.id)).join(Campaign.leads))
    assert {lead for _, lead in rows} == VISIBLE
    assert count == len(VISIBLE)


def test_an_explicit_join_naming_both_sides_is_filtered(camp: SimpleNamespace) -> None:
    stmt = (sa.select(Lead.name).join(campaign_lead, campaign_lead.c.lead_id == Lead.id)
            .join(Campaign, Campaign.id == campaign_lead.c.campaign_id))
    with rbac.as_member(camp.member):
        assert set(db.session.scalars(stmt)) == VISIBLE


@pytest.mark.parametrize("stmt", [
    sa.select(campaign_lead),
    sa.select(sa.func.count()).select_from(campaign_lead),
    sa.select(Lead.name).join(campaign_lead, campaign_lead.c.lead_id == Lead.id),
    sa.select(Campaign.name, campaign_lead.c.lead_id).join(
        campaign_lead, campaign_lead.c.campaign_id == Campaign.id),
    sa.select(Campaign.name, campaign_lead.c.lead_id).join(
        campaign_lead, campaign_lead.c.campaign_id == Campaign.id).where(
        sa.exists(sa.select(Lead.id))),
], ids=["core-rows", "core-count", "orm-without-campaign", "orm-without-lead",
        "orm-lead-in-subquery-only"])
def test_reading_the_link_table_without_both_sides_is_refused(camp: SimpleNamespace,
                                                              stmt: Any) -> None:
    """The link table's rows name hidden leads: no criteria filter them, so a member's
    statement must name both protected sides (or load the relationship)."""
    with rbac.as_member(camp.member), pytest.raises(PermissionDenied, match="campaign_lead"):
        db.session.execute(stmt).all()
    with rbac.system():
        assert db.session.execute(stmt).all()  # trusted code reads it


def test_core_writes_to_the_link_table_are_refused(camp: SimpleNamespace) -> None:
    with rbac.as_member(camp.member), pytest.raises(PermissionDenied):
        db.session.execute(campaign_lead.delete().where(campaign_lead.c.campaign_id == camp.id))
    db.session.rollback()
    assert len(linked_ids(camp.id)) == 5


# -- linking: the flush guard --------------------------------------------------------------

def test_flush_refuses_linking_a_hidden_lead_however_it_was_loaded(camp: SimpleNamespace) -> None:
    hidden_id = camp.lead_ids["member2"]
    with rbac.as_member(camp.member):
        campaign = db.session.get(Campaign, camp.id)
        with rbac.system():
            hidden = db.session.get(Lead, hidden_id)  # loaded past the filter
        campaign.leads.remove(next(lead for lead in campaign.leads
                                   if lead.name == "Lead of member"))
        campaign.leads.append(hidden)
        with pytest.raises(PermissionDenied, match=f"leads #{hidden_id}"):
            db.session.flush()
    db.session.rollback()
    assert linked_ids(camp.id) == set(camp.lead_ids.values())


def test_flush_refuses_unlinking_a_hidden_lead(camp: SimpleNamespace) -> None:
    with rbac.system():
        hidden = db.session.get(Lead, camp.lead_ids["manager"])
        campaign = db.session.get(Campaign, camp.id)
        assert hidden in campaign.leads
    with rbac.as_member(camp.member):
        campaign.leads.remove(hidden)
        with pytest.raises(PermissionDenied, match="not visible"):
            db.session.flush()
    db.session.rollback()
    assert camp.lead_ids["manager"] in linked_ids(camp.id)


def test_flush_refuses_links_on_a_campaign_the_member_may_not_edit(world: SimpleNamespace,
                                                                  camp: SimpleNamespace) -> None:
    """The Viewer sees the campaign and every lead, but may edit neither."""
    viewer = world.members["viewer"].id
    with rbac.as_member(viewer):
        campaign = db.session.get(Campaign, camp.id)
        campaign.leads.remove(campaign.leads[0])
        with pytest.raises(PermissionDenied, match="may not change the leads"):
            db.session.flush()
    db.session.rollback()
    assert len(linked_ids(camp.id)) == 5


def test_removing_visible_links_keeps_the_hidden_ones(camp: SimpleNamespace) -> None:
    """Replacing the collection only touches what the member loaded: hidden links stay."""
    with rbac.as_member(camp.member):
        campaign = db.session.get(Campaign, camp.id)
        campaign.leads = []
        db.session.commit()
    hidden = {camp.lead_ids[t] for t in ("member2", "manager", "junior_rep")}
    assert linked_ids(camp.id) == hidden


def test_deleting_a_campaign_removes_its_hidden_links_too(camp: SimpleNamespace) -> None:
    with rbac.as_member(camp.member):
        db.session.delete(db.session.get(Campaign, camp.id))
        db.session.commit()
    assert linked_ids(camp.id) == set()


# -- linking: the routes -------------------------------------------------------------------

def test_linking_a_hidden_lead_is_a_404_naming_it_and_links_nothing(
        app: Flask, login: Any, camp: SimpleNamespace) -> None:
    with rbac.system():
        fresh = Campaign(workspace_id=camp.w.ws.id, owner_id=camp.w.users["member"].id,
                         name="Fresh")
        db.session.add(fresh)
        db.session.commit()
        fresh_id = fresh.id
    client = login(camp.w.users["member"])
    for hidden in (camp.lead_ids["member2"], camp.other_lead):
        response = client.post(f"/campaigns/{fresh_id}/leads",
                               data={"lead_id": [str(camp.lead_ids["member"]), str(hidden)]},
                               headers={"Accept": "application/json"})
        assert response.status_code == 404
        assert response.json == {"error": f"lead_id: lead #{hidden} not found",
                                 "field": "lead_id"}
        assert linked_ids(fresh_id) == set()
    response = client.post(f"/campaigns/{fresh_id}/leads", data={"lead_id": "x1"})
    assert response.status_code == 400 and b"lead_id" in response.data
    response = client.post(f"/campaigns/{fresh_id}/leads",
                           data={"lead_id": str(camp.lead_ids["member"])})
    assert response.status_code == 303
    assert linked_ids(fresh_id) == {camp.lead_ids["member"]}


def test_a_lead_shared_by_another_workspace_is_never_linked(login: Any,
                                                            camp: SimpleNamespace) -> None:
    """A ``leads.view`` agreement shows Acme's leads in Beta, but a Beta campaign takes
    Beta's leads only: the route answers 403 naming ``lead_id``, the flush guard refuses
    the link however it is made, and nothing is linked."""
    w = camp.w
    agreement = sharing.create_agreement(rbac, rbac.access_for(w.members["owner"]),
                                         workspace="beta", permissions=["leads.view"])
    db.session.commit()
    dual = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == w.ws2.id,
        rbac.models.Membership.user_id == w.users["dual"].id))
    with rbac.as_member(rbac.access_for(dual)) as access:
        sharing.accept(rbac, access, agreement)
        db.session.commit()
    with rbac.system():
        beta = Campaign(workspace_id=w.ws2.id, owner_id=w.users["dual"].id, name="Beta blast")
        db.session.add(beta)
        db.session.commit()
        beta_id = beta.id
    shared = camp.lead_ids["member"]
    client = login(w.users["dual"], w.ws2)
    assert client.get(f"/leads/{shared}").status_code == 200  # visible through the agreement
    response = client.post(f"/campaigns/{beta_id}/leads",
                           data={"lead_id": [str(w.other["lead"].id), str(shared)]},
                           headers={"Accept": "application/json"})
    assert response.status_code == 403, response.data
    assert response.json["field"] == "lead_id" and f"lead #{shared}" in response.json["error"]
    assert linked_ids(beta_id) == set()
    with rbac.as_member(rbac.access_for(dual)):
        campaign = db.session.get(Campaign, beta_id)
        campaign.leads.append(db.session.get(Lead, shared))
        with pytest.raises(PermissionDenied, match="another workspace"):
            db.session.flush()
    db.session.rollback()
    assert linked_ids(beta_id) == set()
    response = client.post(f"/campaigns/{beta_id}/leads", data={"lead_id": str(w.other["lead"].id)})
    assert response.status_code == 303
    assert linked_ids(beta_id) == {w.other["lead"].id}


def test_unlinking_a_hidden_member_is_a_404(login: Any, camp: SimpleNamespace) -> None:
    client = login(camp.w.users["member"])
    response = client.post(f"/campaigns/{camp.id}/leads/remove",
                           data={"lead_id": str(camp.lead_ids["manager"])})
    assert response.status_code == 404 and b"lead #" in response.data
    assert len(linked_ids(camp.id)) == 5
    response = client.post(f"/campaigns/{camp.id}/leads/remove",
                           data={"lead_id": str(camp.lead_ids["member"])})
    assert response.status_code == 303
    assert camp.lead_ids["member"] not in linked_ids(camp.id)


def test_link_routes_need_edit_on_the_campaign(login: Any, camp: SimpleNamespace) -> None:
    viewer = login(camp.w.users["viewer"])
    response = viewer.post(f"/campaigns/{camp.id}/leads/remove",
                           data={"lead_id": str(camp.lead_ids["member"])})
    assert response.status_code == 403
    other = login(camp.w.users["member2"])  # cannot see the Member's campaign at all
    assert other.get(f"/campaigns/{camp.id}").status_code == 404
    assert len(linked_ids(camp.id)) == 5


# -- what the member is shown ----------------------------------------------------------------

def test_the_page_shows_visible_members_only(login: Any, camp: SimpleNamespace) -> None:
    page = login(camp.w.users["member"]).get(f"/campaigns/{camp.id}").get_data(as_text=True)
    assert all(name in page for name in VISIBLE)
    assert not any(name in page or f"{name.split()[-1]}@leads" in page for name in HIDDEN)
    owner_page = login(camp.w.users["owner"]).get(f"/campaigns/{camp.id}").get_data(as_text=True)
    assert all(name in owner_page for name in VISIBLE | HIDDEN)


def test_the_members_csv_holds_exportable_visible_leads_only(app: Flask, login: Any,
                                                             camp: SimpleNamespace) -> None:
    client = login(camp.w.users["member"])
    # The Member may not export leads until a role says so.
    assert client.get(f"/campaigns/{camp.id}/members.csv").status_code == 403
    grant_member(camp.w, "leads", "export")
    response = client.get(f"/campaigns/{camp.id}/members.csv")
    assert response.status_code == 200
    text = response.get_data(as_text=True)
    assert "Lead of member" in text and not any(name in text for name in HIDDEN)
    assert len(text.strip().splitlines()) == 1 + 1  # own lead only: unowned is view-only
    with rbac.system():
        event = db.session.scalars(sa.select(rbac.models.AuditEvent).where(
            rbac.models.AuditEvent.action == "export")).one()
        assert event.detail["rows"] == 1 and event.resource == "leads"


def test_the_records_api_never_names_a_hidden_lead(login: Any, camp: SimpleNamespace) -> None:
    """The API serialises columns only: the campaign, never its links."""
    client = login(camp.w.users["member"])
    response = client.get(f"/api/v1/records/campaigns/{camp.id}")
    assert response.status_code == 200 and response.json["name"] == "Spring launch"
    assert "leads" not in response.json
    assert login(camp.w.users["member2"]).get(
        f"/api/v1/records/campaigns/{camp.id}").status_code == 404
    listing = client.get("/api/v1/records/leads").get_data(as_text=True)
    assert not any(name in listing for name in HIDDEN)


# -- sending ---------------------------------------------------------------------------------

def send_as(client: Any, campaign_id: int) -> Any:
    return client.post(f"/campaigns/{campaign_id}/send")


def audit_events(action: str) -> list[Any]:
    with rbac.system():
        return list(db.session.scalars(sa.select(rbac.models.AuditEvent).where(
            rbac.models.AuditEvent.action == action).order_by(rbac.models.AuditEvent.id)))


def test_send_mails_only_the_leads_the_sender_may_view(app: Flask, login: Any,
                                                       camp: SimpleNamespace) -> None:
    grant_member(camp.w, "campaigns", "send")
    with mail.record_messages() as outbox:
        response = send_as(login(camp.w.users["member"]), camp.id)
    assert response.status_code == 303
    assert sorted(m.recipients[0] for m in outbox) == ["member@leads.test",
                                                       "unowned@leads.test"]
    [event] = audit_events("campaign.send")
    assert (event.detail["sent"], event.detail["skipped_hidden"],
            event.detail["skipped_unsubscribed"]) == (2, 3, 0)
    for msg in outbox:
        assert "Unsubscribe: http://crm.test/campaigns/unsubscribe?t=" in msg.body
        assert msg.extra_headers["List-Unsubscribe"].startswith("<http://crm.test/campaigns/")


def test_send_skips_every_lead_when_their_email_is_hidden(app: Flask, login: Any,
                                                          camp: SimpleNamespace) -> None:
    grant_member(camp.w, "campaigns", "send")
    roles.set_field_rules(rbac, workspaces.role_by_key(rbac, camp.w.ws, "member"),
                          {"leads": {"email": "hidden"}})
    db.session.commit()
    with mail.record_messages() as outbox:
        assert send_as(login(camp.w.users["member"]), camp.id).status_code == 303
    assert outbox == []
    [event] = audit_events("campaign.send")
    assert (event.detail["sent"], event.detail["skipped_hidden"]) == (0, 5)


def test_send_needs_the_send_right(login: Any, camp: SimpleNamespace) -> None:
    with mail.record_messages() as outbox:
        assert send_as(login(camp.w.users["member"]), camp.id).status_code == 403
        assert send_as(login(camp.w.users["viewer"]), camp.id).status_code == 403
    assert outbox == [] and audit_events("campaign.send") == []


def test_send_skips_unsubscribed_addresses_and_the_link_unsubscribes(
        app: Flask, login: Any, camp: SimpleNamespace) -> None:
    owner = login(camp.w.users["owner"])
    with mail.record_messages() as outbox:
        assert send_as(owner, camp.id).status_code == 303
    assert len(outbox) == 5
    mailed = next(m for m in outbox if m.recipients == ["member2@leads.test"])
    link = mailed.body.rsplit("Unsubscribe: ", 1)[1].strip()
    path = link.removeprefix("http://crm.test")
    anonymous = app.test_client()
    page = anonymous.get(path)
    assert page.status_code == 200 and b'name="t"' in page.data
    with rbac.system():  # GET shows a confirm form and changes nothing
        assert db.session.scalar(sa.select(sa.func.count(CampaignUnsubscribe.id))) == 0
    token = path.split("t=", 1)[1]
    first = anonymous.post("/campaigns/unsubscribe", data={"t": token})
    again = anonymous.post("/campaigns/unsubscribe", data={"t": token})
    assert b'data-result="done"' in first.data and b'data-result="already"' in again.data
    with rbac.system():
        assert db.session.scalars(sa.select(CampaignUnsubscribe.email)).all() == [
            "member2@leads.test"]
    with mail.record_messages() as outbox:
        assert send_as(owner, camp.id).status_code == 303
    assert "member2@leads.test" not in {m.recipients[0] for m in outbox} and len(outbox) == 4
    event = audit_events("campaign.send")[-1]
    assert (event.detail["sent"], event.detail["skipped_unsubscribed"]) == (4, 1)
    assert len(audit_events("campaign.unsubscribe")) == 1


@pytest.mark.parametrize("token", ["", "garbage", "eyJ3IjoxLCJlIjoiYUBiLmMifQ.forged"])
def test_a_bad_unsubscribe_token_is_a_400(app: Flask, world: SimpleNamespace, token: str) -> None:
    client = app.test_client()
    assert client.get(f"/campaigns/unsubscribe?t={token}").status_code == 400
    response = client.post("/campaigns/unsubscribe", data={"t": token})
    assert response.status_code == 400 and b'data-field="t"' in response.data
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count(CampaignUnsubscribe.id))) == 0


def test_a_token_of_another_salt_does_not_unsubscribe(app: Flask, camp: SimpleNamespace) -> None:
    forged = URLSafeSerializer("test", salt="other").dumps({"w": camp.w.ws.id, "e": "x@y.z"})
    assert app.test_client().post("/campaigns/unsubscribe", data={"t": forged}).status_code == 400


def test_sends_per_sender_are_rate_limited(app: Flask, login: Any, camp: SimpleNamespace) -> None:
    app.config["CRM_CAMPAIGN_SENDS_PER_HOUR"] = 1
    owner = login(camp.w.users["owner"])
    assert send_as(owner, camp.id).status_code == 303
    with mail.record_messages() as outbox:
        response = owner.post(f"/campaigns/{camp.id}/send",
                              headers={"Accept": "application/json"})
    assert response.status_code == 429 and "Rate limit" in response.json["error"]
    assert outbox == [] and len(audit_events("campaign.send")) == 1


def test_mails_per_workspace_are_rate_limited(app: Flask, login: Any,
                                              camp: SimpleNamespace) -> None:
    app.config["CRM_CAMPAIGN_MAILS_PER_HOUR"] = 4
    with mail.record_messages() as outbox:
        response = send_as(login(camp.w.users["owner"]), camp.id)
    assert response.status_code == 429 and b"Rate limit" in response.data
    assert outbox == [] and audit_events("campaign.send") == []
    with rbac.system():
        assert db.session.get(Campaign, camp.id).status == "draft"


def campaign_sends() -> int:
    with rbac.system():
        return db.session.scalar(sa.select(sa.func.count(CampaignSend.id))) or 0


def sender_without_edit(world: SimpleNamespace) -> None:
    """Give ``viewer`` a role that views and sends every campaign and views leads, no edit."""
    role = rbac.models.Role(workspace=world.ws, name="Campaign sender")
    for resource, action in (("campaigns", "view"), ("campaigns", "send"), ("leads", "view")):
        workspaces.add_grant(rbac, role, resource, action, "all")
    db.session.add(role)
    db.session.flush()
    workspaces.assign_role(rbac, world.members["viewer"], role)
    db.session.commit()


def test_a_sender_who_may_not_edit_the_campaign_sends_nothing(app: Flask, login: Any,
                                                               camp: SimpleNamespace) -> None:
    """Sending marks the campaign sent: without ``edit`` it is a 403 and no mail leaves."""
    sender_without_edit(camp.w)
    client = login(camp.w.users["viewer"])
    with mail.record_messages() as outbox:
        answers = [send_as(client, camp.id).status_code for _ in range(3)]
    assert answers == [403, 403, 403] and outbox == []
    assert campaign_sends() == 0 and audit_events("campaign.send") == []
    with rbac.system():
        assert db.session.get(Campaign, camp.id).status == "draft"


def test_an_owner_viewing_as_a_sender_sends_nothing(app: Flask, login: Any,
                                                    camp: SimpleNamespace) -> None:
    """View-as is read-only: the send is refused at its flush, before any mail."""
    grant_member(camp.w, "campaigns", "send")
    owner = login(camp.w.users["owner"])
    started = owner.post("/settings/view-as",
                         data={"membership_id": str(camp.w.members["member"].id)})
    assert started.status_code == 302
    with mail.record_messages() as outbox:
        answers = [send_as(owner, camp.id).status_code for _ in range(2)]
    assert all(code == 403 for code in answers) and outbox == []
    assert campaign_sends() == 0 and audit_events("campaign.send") == []
    with rbac.system():
        assert db.session.get(Campaign, camp.id).status == "draft"


def test_a_send_is_mailed_once_and_recorded_once(app: Flask, login: Any,
                                                 camp: SimpleNamespace) -> None:
    with mail.record_messages() as outbox:
        assert send_as(login(camp.w.users["owner"]), camp.id).status_code == 303
    assert sorted(m.recipients[0] for m in outbox) == sorted(
        f"{tag}@leads.test" for tag in camp.w.leads)
    assert campaign_sends() == 1 and len(audit_events("campaign.send")) == 1


def test_a_mail_failure_mid_send_keeps_the_send_with_the_mails_that_left(
        app: Flask, login: Any, camp: SimpleNamespace, monkeypatch: pytest.MonkeyPatch) -> None:
    """The send stays recorded (status sent, counted by the limit) with the number that
    left; a ``campaign.send_failed`` event names both numbers and the answer is a 502."""
    real_send = flask_mail.Connection.send
    handed: list[Any] = []

    def flaky(conn: Any, msg: Any, *args: Any) -> None:
        if len(handed) == 2:
            raise smtplib.SMTPServerDisconnected("connection lost")
        handed.append(msg)
        real_send(conn, msg, *args)

    monkeypatch.setattr(flask_mail.Connection, "send", flaky)
    with mail.record_messages() as outbox:
        response = login(camp.w.users["owner"]).post(
            f"/campaigns/{camp.id}/send", headers={"Accept": "application/json"})
    assert response.status_code == 502 and "after 2 of 5" in response.json["error"]
    assert len(outbox) == 2
    with rbac.system():
        [row] = db.session.scalars(sa.select(CampaignSend)).all()
        assert row.sent == 2
        assert db.session.get(Campaign, camp.id).status == "sent"
    assert len(audit_events("campaign.send")) == 1
    [failed] = audit_events("campaign.send_failed")
    assert (failed.detail["sent"], failed.detail["failed"]) == (2, 3)


def test_unsubscribe_token_names_workspace_and_address(app: Flask, world: SimpleNamespace) -> None:
    with app.test_request_context():
        token = service.unsubscribe_token(world.ws.id, " Someone@Example.test ")
        assert service.read_unsubscribe_token(token) == (world.ws.id, "someone@example.test")


# -- a plan without the marketing module -----------------------------------------------------

def test_reassigning_all_records_skips_a_module_outside_the_plan(camp: SimpleNamespace) -> None:
    """On the Pro plan campaigns are out of everyone's reach: "reassign all" moves the
    rest and leaves them; naming campaigns is refused."""
    w = camp.w
    with rbac.system():
        w.ws.plan = "pro"
        db.session.commit()
    owner = rbac.access_for(w.members["owner"].id)
    moved = reassignment.reassign(rbac, owner, w.users["member"].id, w.users["member2"].id)
    db.session.commit()
    assert "campaigns" not in moved and moved["leads"] == 1
    with rbac.system():
        assert db.session.get(Campaign, camp.id).owner_id == w.users["member"].id
    with pytest.raises(PermissionDenied, match="campaigns"):
        reassignment.reassign(rbac, owner, w.users["member2"].id, w.users["member"].id,
                              resources=["campaigns"])
