"""The explain page and CLI, "view as", and the access review."""

from __future__ import annotations

import datetime as dt
import re
from html import unescape
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import (
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
    give_role,
    remove_roles,
)
from tests.test_settings_ui import role


def explain_page(client: Any, world: SimpleNamespace, member: str, action: str, resource: str,
                 record: Any = None) -> Any:
    url = (f"/settings/explain?member={world.members[member].id}&action={action}"
           f"&resource={resource}&record={record.id if record is not None else ''}")
    return client.get(url)


def text_of(html: str) -> str:
    section = html.split('aria-label="Decision"', 1)[1].split("</section>", 1)[0]
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", section)))


# -- explain -------------------------------------------------------------------------------


def test_explain_page_shows_the_decision_path(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    won = world.deals["member-won"]
    page = explain_page(admin, world, "finance", "view", "deals", won)
    assert page.status_code == 200
    text = text_of(page.text)
    assert "ALLOWED" in text and "roles: Finance" in text
    assert "role 'Finance'" in text and "stage in (won, lost)" in text
    assert "Plan enterprise" in text and "Hidden fields none" in text

    new = world.deals["member-new"]
    text = text_of(explain_page(admin, world, "finance", "view", "deals", new).text)
    assert "DENIED" in text and "outside every granted scope or condition" in text

    text = text_of(explain_page(admin, world, "junior_rep", "delete", "leads").text)
    assert "DENIED" in text and "no role grants it" in text


def test_explain_page_explicit_deny_plan_and_field_rules(world: SimpleNamespace,
                                                         login: Any) -> None:
    with rbac.system():
        no_export = rbac.models.Role(workspace=world.ws, name="No export")
        workspaces.add_grant(rbac, no_export, "leads", "export", "all", effect="deny")
        workspaces.assign_role(rbac, world.members["manager"], no_export)
        db.session.add(rbac.models.FieldRule(role=role(world, "member"), resource="deals",
                                             field="amount", mode="hidden"))
        db.session.add(rbac.models.FieldRule(role=role(world, "member"), resource="deals",
                                             field="title", mode="readonly"))
        db.session.commit()
    admin = login(world.users["admin"], world.ws)

    text = text_of(explain_page(admin, world, "manager", "export", "leads").text)
    assert "DENIED" in text and "explicit deny" in text and "No export" in text

    text = text_of(explain_page(admin, world, "member", "view", "deals").text)
    assert "ALLOWED" in text
    assert "Hidden fields amount" in text and "Read-only fields title" in text

    with rbac.system():
        world.ws.plan = "free"
        db.session.commit()
    text = text_of(explain_page(admin, world, "member", "view", "deals").text)
    assert "DENIED" in text and "plan does not include" in text
    assert "Plan free (does not include deals)" in text


def test_explain_page_refusals_and_bad_input(world: SimpleNamespace, login: Any) -> None:
    for who in ("manager", "member", "viewer"):
        response = explain_page(login(world.users[who], world.ws), world, "member", "view",
                                "leads")
        assert response.status_code == 403
    admin = login(world.users["admin"], world.ws)
    assert admin.get("/settings/explain").status_code == 200  # the empty form
    other = world.other["lead"]  # another workspace's record
    assert explain_page(admin, world, "member", "view", "leads", other).status_code == 400
    assert admin.get(f"/settings/explain?member={world.members['member'].id}"
                     "&action=fly&resource=leads").status_code == 400
    assert admin.get("/settings/explain?member=99999&action=view&resource=leads"
                     ).status_code == 400


def test_explain_cli_prints_plan_and_field_rules(app: Flask, world: SimpleNamespace) -> None:
    with rbac.system():
        db.session.add(rbac.models.FieldRule(role=role(world, "finance"), resource="deals",
                                             field="amount", mode="readonly"))
        db.session.commit()
    result = app.test_cli_runner().invoke(args=[
        "rbac", "explain", "--user", "finance@example.test", "--workspace", "acme",
        "--record", str(world.deals["member-won"].id), "deals.view"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ALLOWED")
    assert "plan: enterprise (includes deals)" in result.output
    assert "hidden fields: none" in result.output
    assert "read-only fields: amount" in result.output


# -- view as -------------------------------------------------------------------------------


def _start(client: Any, membership: Any) -> Any:
    return client.post("/settings/view-as", data={"membership_id": str(membership.id),
                                                  "next": "/leads/"})


def test_view_as_shows_the_members_data_read_only_and_is_audited(world: SimpleNamespace,
                                                                 login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    assert "Lead of manager" in admin.get("/leads/").text
    response = _start(admin, world.members["member"])
    assert response.status_code == 302 and response.headers["Location"].endswith("/leads/")

    page = admin.get("/leads/")
    assert page.status_code == 200
    assert "Lead of member" in page.text and "Lead of manager" not in page.text
    assert "rbac-view-as-banner" in page.text and "Viewing as" in page.text
    assert admin.get(f"/leads/{world.leads['manager'].id}").status_code == 404
    assert admin.get("/settings/audit").status_code == 403  # the member may not

    with rbac.system():
        count = db.session.scalar(sa.select(sa.func.count()).select_from(Lead))
    created = admin.post("/leads/new", data={"name": "Sneaky", "status": "new"})
    assert created.status_code == 403
    edited = admin.post(f"/leads/{world.leads['member'].id}/edit",
                        data={"name": "Renamed", "status": "new"})
    assert edited.status_code == 403
    db.session.expire_all()
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == count
        assert db.session.get(Lead, world.leads["member"].id).name == "Lead of member"

    assert admin.post("/settings/view-as/stop").status_code == 302
    assert "Lead of manager" in admin.get("/leads/").text
    assert "rbac-view-as-banner" not in admin.get("/leads/").text

    A = rbac.models.AuditEvent
    db.session.expire_all()
    evs = db.session.scalars(sa.select(A).where(A.action.like("view_as.%")).order_by(A.id)).all()
    assert [e.action for e in evs] == ["view_as.started", "view_as.stopped"]
    assert all(e.actor_membership_id == world.members["admin"].id for e in evs)
    assert evs[0].detail["viewed_membership_id"] == world.members["member"].id


def test_view_as_is_refused_to_non_admins_and_for_owners(world: SimpleNamespace,
                                                         login: Any) -> None:
    for who in ("manager", "member", "viewer"):
        assert _start(login(world.users[who], world.ws),
                      world.members["member2"]).status_code == 403
    admin = login(world.users["admin"], world.ws)
    assert _start(admin, world.members["owner"]).status_code == 403
    assert _start(admin, world.members["admin"]).status_code == 403  # oneself
    other = rbac.models.Membership
    outsider = db.session.scalar(sa.select(other).where(other.workspace_id == world.ws2.id,
                                                        other.user_id == world.users["outsider"].id))
    assert _start(admin, outsider).status_code == 404
    assert "rbac-view-as-banner" not in admin.get("/leads/").text
    owner = login(world.users["owner"], world.ws)
    assert _start(owner, world.members["admin"]).status_code == 302
    assert "rbac-view-as-banner" in owner.get("/").text


# -- access review -------------------------------------------------------------------------


def test_access_review(world: SimpleNamespace, login: Any) -> None:
    m = rbac.models
    with rbac.system():
        db.session.add(m.Role(workspace=world.ws, name="Nobody's role"))
        soon = utcnow() + dt.timedelta(days=3)
        workspaces.assign_role(rbac, world.members["viewer"], role(world, "finance"),
                               expires_at=soon)
        world.members["member"].last_seen_at = utcnow()
        world.members["member2"].last_seen_at = utcnow() - dt.timedelta(days=90)
        db.session.commit()
    admin = login(world.users["admin"], world.ws)
    page = admin.get("/settings/access-review?inactive_days=30&expiring_days=7")
    assert page.status_code == 200

    def section(name: str) -> str:
        return page.text.split(f'id="review-{name}"', 1)[1].split("</ul>", 1)[0]

    assert "Owner" in section("privileged") and "Admin" in section("privileged")
    assert "Viewer" not in section("privileged")
    assert "Member2" in section("inactive") and ">Member (" not in section("inactive")
    assert "Nobody&#39;s role" in section("unused") or "Nobody's role" in section("unused")
    assert "Finance until" in section("expiring")
    for who in ("manager", "viewer"):
        assert login(world.users[who], world.ws).get("/settings/access-review").status_code == 403


def test_explain_and_who_could_answer_only_on_records_the_asker_sees(
        world: SimpleNamespace, login: Any) -> None:
    """An auditor with the settings pages and their own leads learns nothing of other leads:
    an answer about a record tells of its existence and of the values its conditions read."""
    with rbac.system():
        member = world.members["member"]
        remove_roles(member)
        give_role(member, custom_role(world, "Auditor", [("settings", "view", "all"),
                                                         ("leads", "view", "own")]))
        db.session.commit()
    auditor = login(world.users["member"], world.ws)
    mine, theirs = world.leads["member"], world.leads["member2"]
    assert explain_page(auditor, world, "admin", "view", "leads", mine).status_code == 200
    hidden = explain_page(auditor, world, "admin", "view", "leads", theirs)
    assert hidden.status_code == 400
    assert f"No leads record #{theirs.id} in this workspace" in unescape(hidden.text)
    assert 'aria-label="Decision"' not in hidden.text
    past = "/settings/who-could?resource=leads&action=view&record={}"
    assert auditor.get(past.format(mine.id)).status_code == 200
    refused = auditor.get(past.format(theirs.id))
    assert refused.status_code == 400
    assert f"No leads record #{theirs.id} in this workspace" in unescape(refused.text)
    # The same words as a record that does not exist.
    assert "No leads record #999999 in this workspace" in unescape(
        auditor.get(past.format(999999)).text)


def test_explain_and_who_could_give_no_record_answer_past_a_hidden_field(
        world: SimpleNamespace, login: Any) -> None:
    """Finance may view deals only where ``stage in (won, lost)``. An auditor who sees
    every deal but not its stage would learn each deal's stage from whether Finance's
    condition matches it: a record-level answer is refused, the resource-level one stays."""
    with rbac.system():
        member = world.members["member"]
        remove_roles(member)
        auditor_role = custom_role(world, "Auditor", [("settings", "view", "all"),
                                                      ("deals", "view", "all")])
        db.session.add(rbac.models.FieldRule(role=auditor_role, resource="deals",
                                             field="stage", mode="hidden"))
        give_role(member, auditor_role)
        db.session.commit()
    auditor = login(world.users["member"], world.ws)
    deal = world.deals["member2-won"]
    page = explain_page(auditor, world, "finance", "view", "deals", deal)
    assert page.status_code == 400 and 'aria-label="Decision"' not in page.text
    assert "stage of deals is hidden from you" in unescape(page.text)
    assert "ALLOWED" not in page.text and "DENIED" not in page.text
    who = auditor.get(f"/settings/who-could?resource=deals&action=view&record={deal.id}")
    assert who.status_code == 400 and "stage of deals is hidden from you" in unescape(who.text)
    assert explain_page(auditor, world, "finance", "view", "deals").status_code == 200
