"""The demo's pages as a member meets them: one design system, honest controls, clear pages.

- Invitation pages (accept, sign in to accept, already used, expired) name
  the workspace, the inviter and the roles, state the password rule that
  the accept form enforces, and sit in the sign-in page's card.
- While an Owner or Admin views the workspace as a member, a bar and the
  header say so, and no control that would write is offered.
- ``/admin`` has a home page whose counts are what the member may see,
  timestamps read ``YYYY-MM-DD HH:MM UTC`` and no raw id is a column.
- A bulk delete with nothing selected is a 400 that changes nothing.
- A first sign-in says "Welcome", later ones "Welcome back"; hidden totals
  read "—"; list filters offer only what the member can see; a CSV names
  owners as the page does.
"""

from __future__ import annotations

import csv
import io
import re
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from markupsafe import escape

from crm_app.extensions import db, mail
from crm_app.models import Deal, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.security import PasswordRules, check_password, describe_rules
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_demo_views import plugin_ids
from tests.test_hidden_fields import hide
from tests.test_team import link_token, membership, snapshot

VIEW_AS_BAR = "You are viewing Acme Sales as <strong>Member</strong> (Member) — read-only"
WRITE_CONTROLS = ('data-action="create"', 'data-action="edit"', 'data-action="delete"',
                  'data-action="bulk-delete"')


def invite(client: Any, world: SimpleNamespace, email: str, *keys: str) -> str:
    """Invite ``email`` with the built-in roles ``keys``; return the link's token."""
    roles = [workspaces.role_by_key(rbac, world.ws, key).id for key in keys]
    with mail.record_messages() as outbox:
        response = client.post("/settings/members/invite", data={"email": email, "roles": roles})
    assert response.status_code == 302, response.text[:300]
    return link_token(outbox[0].body)


def sign_in(app: Flask, email: str, password: str = "password") -> Any:
    client = app.test_client()
    response = client.post("/login", data={"email": email, "password": password})
    assert response.status_code == 302, response.text[:300]
    return client


# -- invitation pages -----------------------------------------------------------------------


def test_the_accept_page_names_workspace_inviter_roles_and_the_password_rule(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    token = invite(owner, world, "new.rep@example.test", "member", "viewer")
    anon = app.test_client()
    page = anon.get(f"/settings/invitations/{token}").text
    assert 'class="auth-card"' in page  # the sign-in page's card, not a bare page
    assert '<dd data-invitation="workspace">Acme Sales</dd>' in page
    assert '<dd data-invitation="inviter">Owner</dd>' in page
    assert '<dd data-invitation="roles">Member, Viewer</dd>' in page
    rules = PasswordRules()  # no workspace of this account has a policy row: the defaults
    help_text = str(escape(describe_rules(rules)))
    assert f'<small class="rbac-help" id="password-help">{help_text}</small>' in page
    assert 'aria-describedby="password-help"' in page
    # The rule stated is the rule enforced: one character short is refused ...
    short = "Tq8#vLp2!mZr"[: rules.min_length - 1]
    before = snapshot()
    refused = anon.post(f"/settings/invitations/{token}", data={"name": "New Rep",
                                                                "password": short, "confirm": short})
    assert refused.status_code == 400 and help_text in refused.text
    assert snapshot() == before
    # ... and a strong password of exactly the minimum is taken.
    exact = "Tq8#vLp2!mZr"
    assert len(exact) == rules.min_length
    joined = anon.post(f"/settings/invitations/{token}", data={"name": "New Rep",
                                                               "password": exact, "confirm": exact})
    assert joined.status_code == 302
    assert membership("new.rep@example.test", world.ws).status == "active"


def test_the_password_rule_matches_the_service() -> None:
    """The help text states the length and strength :func:`check_password` checks."""
    rules = PasswordRules()
    assert str(rules.min_length) in describe_rules(rules)
    assert check_password("Tq8#vLp2!mZr"[: rules.min_length - 1], policy=rules)
    assert check_password("y" * rules.min_length, policy=rules)  # long enough, too easy
    assert check_password("Tq8#vLp2!mZr", policy=rules) == []


def test_a_used_invitation_links_to_sign_in_and_still_says_what_it_was(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    token = invite(owner, world, "used@example.test", "member")
    anon = app.test_client()
    assert anon.post(f"/settings/invitations/{token}", data={
        "name": "Used", "password": "Tq8#vLp2!mZr", "confirm": "Tq8#vLp2!mZr"}).status_code == 302
    page = app.test_client().get(f"/settings/invitations/{token}")
    assert page.status_code == 400
    assert "This invitation was already used" in page.text
    assert re.search(r'href="(http://crm\.test)?/login"[^>]*data-invitation="sign-in"', page.text)
    assert '<dd data-invitation="workspace">Acme Sales</dd>' in page.text
    assert 'class="auth-card"' in page.text


def test_an_expired_invitation_names_the_workspace_and_the_inviter(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    token = invite(owner, world, "late@example.test", "member")
    app.config["RBAC_INVITE_MAX_AGE"] = -1
    page = app.test_client().get(f"/settings/invitations/{token}")
    assert page.status_code == 400 and "expired" in page.text
    assert '<dd data-invitation="workspace">Acme Sales</dd>' in page.text
    assert "Ask Owner to send a new invitation" in page.text
    # A forged token learns nothing about any workspace.
    forged = app.test_client().get("/settings/invitations/not-a-token")
    assert forged.status_code == 404 and "Acme Sales" not in forged.text


def test_an_existing_account_is_asked_to_sign_in_to_accept(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    token = invite(owner, world, "outsider@example.test", "viewer")
    page = app.test_client().get(f"/settings/invitations/{token}").text
    assert "Sign in to accept" in page
    assert f"/login?next=/settings/invitations/{token}" in page
    assert '<dd data-invitation="roles">Viewer</dd>' in page


# -- viewing as a member --------------------------------------------------------------------


def test_view_as_shows_the_bar_and_the_member_in_the_header_and_hides_writes(
        world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    own = member.get("/leads/").text
    assert 'data-action="create"' in own and 'data-action="edit"' in own  # they may, as themselves

    admin = login(world.users["admin"], world.ws)
    assert admin.post("/settings/view-as", data={
        "membership_id": str(world.members["member"].id), "next": "/leads/"}).status_code == 302
    page = admin.get("/leads/").text
    assert VIEW_AS_BAR in page and "Stop viewing as" in page
    assert '<span class="user-name">Viewing as Member</span>' in page
    assert '<span class="user-name">Admin</span>' not in page
    assert "Lead of member" in page and "Lead of manager" not in page
    for control in (*WRITE_CONTROLS, 'data-action="export"'):  # Member may not export either
        assert control not in page, control
    detail = admin.get(f"/leads/{world.leads['member'].id}").text
    assert VIEW_AS_BAR in detail
    for control in WRITE_CONTROLS:
        assert control not in detail, control
    dashboard = admin.get("/").text  # the greeting names the viewed member, not the viewer
    assert "<h1>Viewing as Member</h1>" in dashboard and "Welcome back, Admin" not in dashboard


def test_export_stays_offered_while_viewing_as_a_member_who_may_export(
        world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    admin.post("/settings/view-as", data={"membership_id": str(world.members["finance"].id),
                                          "next": "/deals/"})
    page = admin.get("/deals/").text
    assert "You are viewing Acme Sales as <strong>Finance</strong>" in page
    assert 'data-action="export"' in page  # reading, as the member may
    assert 'data-action="create"' not in page and 'data-action="bulk-delete"' not in page


# -- /admin ---------------------------------------------------------------------------------


def admin_count(page: str, label: str) -> int | None:
    match = re.search(rf'data-count="{label}">\s*<(?:a|span)[^>]*>\s*'
                      r'<span class="rbac-admin-count-value[^"]*">([\d,]+)</span>', page)
    return int(match.group(1).replace(",", "")) if match else None


def test_admin_home_counts_what_the_member_may_see(world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    page = member.get("/admin/").text
    for label, model in (("Leads", Lead), ("Deals", Deal)):
        expected = len(plugin_ids(world.members["member"], model))
        assert admin_count(page, label) == expected, label
    assert admin_count(page, "Leads") < db.session.scalar(
        sa.select(sa.func.count()).select_from(Lead).where(Lead.workspace_id == world.ws.id)
        .execution_options(rbac_bypass=True))
    assert admin_count(page, "Members") is None  # no members.view
    assert "Back to the CRM" in page  # the navbar links back
    assert 'href="/admin/"' in member.get("/").text or "/admin/" in member.get("/").text


def test_admin_home_counts_members_roles_and_open_invitations(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    invite(owner, world, "pending.one@example.test", "member")
    page = owner.get("/admin/").text
    M, R = rbac.models.Membership, rbac.models.Role
    active = db.session.scalar(sa.select(sa.func.count()).select_from(M).where(
        M.workspace_id == world.ws.id, M.status == "active"))
    roles = db.session.scalar(sa.select(sa.func.count()).select_from(R).where(
        R.workspace_id == world.ws.id))
    assert admin_count(page, "Members") == active
    assert admin_count(page, "Roles") == roles
    assert admin_count(page, "Open invitations") == 1
    assert admin_count(page, "Leads") == len(plugin_ids(world.members["owner"], Lead))


def test_admin_shows_utc_timestamps_and_no_id_columns(world: SimpleNamespace,
                                                     login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    invite(owner, world, "audited@example.test", "member")  # an audit event with a time
    audit = owner.get("/admin/rbac_admin_audit/").text
    assert re.search(r">\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC</time>", audit)
    # No Python str() of a datetime (the machine-readable ISO form sits after a "T").
    assert not re.search(r"[^T\d]\d{2}:\d{2}:\d{2}\.\d+", audit)
    assert "col-id" not in audit
    assert re.search(r'class="col-actor_membership_id">\s*Owner\s*<', audit)  # by name
    leads = owner.get("/admin/leads/").text
    assert "col-id" not in leads and "col-owner_id" not in leads and "col-owner" in leads
    assert 'rel="icon" href="data:image/svg+xml' in leads
    details = owner.get(f"/admin/leads/details/?id={world.leads['member'].id}").text
    assert re.search(r"<b>Name</b>\s*</td>\s*<td>\s*Lead of member", details)
    assert re.search(r"<b>Owner</b>\s*</td>\s*<td>\s*Member", details)
    assert "<b>Id</b>" not in details and "<b>Owner Id</b>" not in details


# -- bulk delete ----------------------------------------------------------------------------


def test_bulk_delete_with_nothing_selected_is_refused_and_changes_nothing(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/leads/").text
    assert 'data-rbac-needs-selection' in page and 'data-rbac-select-all="ids"' in page
    assert 'data-rbac-confirm="Delete {count} selected leads? This cannot be undone."' in page
    before = snapshot()
    response = owner.post("/leads/bulk-delete", data={})
    assert response.status_code == 400 and "Select at least one record" in response.text
    assert snapshot() == before


# -- greetings, totals, filters, exports ----------------------------------------------------


def test_first_sign_in_says_welcome_and_later_ones_welcome_back(app: Flask,
                                                                world: SimpleNamespace) -> None:
    first = sign_in(app, "member@example.test")
    page = first.get("/").text
    assert "<h1>Welcome, Member</h1>" in page
    first.post("/logout")
    again = sign_in(app, "member@example.test")
    assert "<h1>Welcome back, Member</h1>" in again.get("/").text


def test_hidden_deal_amounts_read_as_a_dash(world: SimpleNamespace, login: Any) -> None:
    user = hide(world, {"deals": ["amount"]})
    page = login(user, world.ws).get("/").text
    for total in ("open", "won"):
        match = re.search(rf'data-total="{total}">(.*?)</span></div>', page)
        assert match and "—" in match.group(1) and "$" not in match.group(1), total


def option_labels(page: str, name: str) -> list[str]:
    select = re.search(rf'<select name="{name}".*?</select>', page, re.S)
    assert select, name
    return re.findall(r"<option value=\"[^\"]*\"[^>]*>([^<]*)</option>", select.group(0))


def test_owner_filter_offers_only_owners_of_visible_records(world: SimpleNamespace,
                                                            login: Any) -> None:
    member = login(world.users["member"], world.ws)
    assert option_labels(member.get("/leads/").text, "owner") == ["Any owner", "Member"]
    owner = login(world.users["owner"], world.ws)
    assert option_labels(owner.get("/leads/").text, "owner") == [
        "Any owner", "Junior Rep", "Manager", "Member", "Member2"]
    manager_id = world.users["manager"].id
    filtered = owner.get(f"/leads/?owner={manager_id}").text
    assert "Lead of manager" in filtered and "Lead of member<" not in filtered
    # Asking for someone else's records shows nothing the member could not see anyway.
    assert "Lead of manager" not in member.get(f"/leads/?owner={manager_id}").text


def test_facet_offers_only_values_of_visible_records(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    assert option_labels(owner.get("/deals/").text, "stage") == ["Any stage", "New", "Won"]
    finance = login(world.users["finance"], world.ws)
    stages = {d.stage for d in db.session.scalars(sa.select(Deal).where(
        Deal.id.in_(plugin_ids(world.members["finance"], Deal))).execution_options(
        rbac_bypass=True))}
    offered = option_labels(finance.get("/deals/").text, "stage")[1:]
    assert {label.lower() for label in offered} == stages


def test_csv_names_owners_as_the_list_does(world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws)
    page = owner.get("/leads/").text
    rows = list(csv.DictReader(io.StringIO(owner.get("/leads/export.csv").text)))
    by_name = {row["Name"]: row["Owner"] for row in rows}
    assert by_name["Lead of member"] == "Member"
    assert by_name["Lead of unowned"] == "Unassigned"
    row = re.search(rf'<tr data-id="{world.leads["member"].id}">.*?</tr>', page, re.S)
    assert row and ">Member</span>" in row.group(0).replace("\n", "")
    unowned = re.search(rf'<tr data-id="{world.leads["unowned"].id}">.*?</tr>', page, re.S)
    assert unowned and ">Unassigned<" in unowned.group(0)
