"""View-as never shows the viewer more than they may see themselves.

Refused (403 with the reason, nothing kept in the session) unless the viewer
holds a role of ``RBAC_VIEW_AS_ROLES`` (Owner and Admin by default) and the
target's access lies within the viewer's: actions, scopes under both
members' visibility levels, conditions and field rules. The check runs
again on every request while viewing as.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.oversight import viewas
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_alerts import set_thresholds

#: The reports a Member reads (their own records' figures): a viewer covering a Member holds them.
READS_REPORTS = [("reports", "view", "all"), ("analytics", "view", "all")]


def custom_role(world: SimpleNamespace, name: str, grants: list[tuple[str, str, str]],
                holder: str, parent: str | None = None) -> Any:
    """A role with ``grants`` (resource, action, scope) given to ``holder``."""
    role = rbac.models.Role(workspace=world.ws, name=name,
                            parent=workspaces.role_by_key(rbac, world.ws, parent)
                            if parent else None)
    for resource, action, scope in grants:
        workspaces.add_grant(rbac, role, resource, action, scope)
    db.session.add(role)
    member = world.members[holder]
    for mr in list(member.member_roles):
        db.session.delete(mr)
    db.session.flush()
    workspaces.assign_role(rbac, member, role)
    db.session.commit()
    return role


def start(client: Any, world: SimpleNamespace, target: str) -> Any:
    return client.post("/settings/view-as", data={"membership_id": str(world.members[target].id),
                                                  "next": "/leads/"})


def viewing(client: Any) -> Any:
    with client.session_transaction() as sess:
        return sess.get(viewas.SESSION_KEY)


def assert_refused(response: Any, client: Any, *words: str) -> None:
    assert response.status_code == 403, response.status_code
    for word in words:
        assert word in response.text, response.text
    assert viewing(client) is None


def test_settings_view_with_own_leads_cannot_view_as_an_admin(app: Flask,
                                                               world: SimpleNamespace,
                                                               login: Any) -> None:
    """The reported escalation: settings.view and own-scope leads, view as Admin."""
    custom_role(world, "Snoop", [("settings", "view", "all"), ("leads", "view", "own")],
                "member")
    client = login(world.users["member"], world.ws)
    assert_refused(start(client, world, "admin"), client, "Only Owners and Admins")
    page = client.get("/leads/")
    assert "Lead of manager" not in page.text and "rbac-view-as-banner" not in page.text
    assert client.get("/settings/members").status_code == 403
    # Without the role restriction the "within your own" rule still refuses.
    app.config["RBAC_VIEW_AS_ROLES"] = None
    assert_refused(start(client, world, "admin"), client, "wider")
    beyond = viewas.wider(rbac, rbac.access_for(world.members["member"]),
                          rbac.access_for(world.members["admin"]))
    assert "leads.view [all]" in beyond and "members.view [all]" in beyond
    assert client.get("/settings/members").status_code == 403


def test_an_admin_views_as_a_viewer(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    response = start(admin, world, "viewer")
    assert response.status_code == 302 and response.headers["Location"] == "/leads/"
    assert viewing(admin) == world.members["viewer"].id
    assert "rbac-view-as-banner" in admin.get("/leads/").text


def test_signing_out_while_viewing_as_stops_viewing_and_signs_out(world: SimpleNamespace,
                                                                   login: Any) -> None:
    """Sign-out is never refused: on a shared computer, an Admin who clicks "Sign out"
    while viewing as someone must not stay signed in."""
    admin = login(world.users["admin"], world.ws)
    start(admin, world, "viewer")
    assert "rbac-view-as-banner" in admin.get("/leads/").text
    assert admin.post("/leads/new", data={"name": "Refused"}).status_code == 403
    signed_out = admin.post("/logout")
    assert signed_out.status_code == 302, signed_out.text[:300]
    assert viewing(admin) is None
    after = admin.get("/settings/profile")
    assert after.status_code == 302 and "/login" in after.headers["Location"]
    A = rbac.models.AuditEvent
    stopped = db.session.scalars(sa.select(A).where(A.action == "view_as.stopped")).all()
    assert [e.detail.get("viewed_membership_id") for e in stopped] == [world.members["viewer"].id]


def test_a_target_seeing_a_field_hidden_from_the_viewer_is_refused(world: SimpleNamespace,
                                                                    login: Any) -> None:
    """An Admin (by inheritance) without deal amounts may not view as the Viewer, who sees them."""
    role = custom_role(world, "Admin without amounts", [], "admin", parent="admin")
    db.session.add(rbac.models.FieldRule(role=role, resource="deals", field="amount",
                                         mode="hidden"))
    db.session.commit()
    admin = login(world.users["admin"], world.ws)
    assert_refused(start(admin, world, "viewer"), admin, "deals.amount")
    # The same Admin may view as Finance once Finance hides amounts too.
    assert_refused(start(admin, world, "finance"), admin, "deals.amount")
    finance = workspaces.role_by_key(rbac, world.ws, "finance")
    db.session.add(rbac.models.FieldRule(role=finance, resource="deals", field="amount",
                                         mode="hidden"))
    db.session.commit()
    assert start(admin, world, "finance").status_code == 302


def test_a_target_with_a_wider_scope_is_refused(app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    """A manager sees their team: they may view as a team member, not as anyone else."""
    app.config["RBAC_VIEW_AS_ROLES"] = None
    custom_role(world, "Manager with oversight",
                [("settings", "view", "all"), ("members", "view", "all")] + READS_REPORTS
                + [(r, a, "team") for r in ("leads", "deals", "clients", "tasks", "notes", "invoices",
                                                                "campaigns")
                   for a in ("view", "create", "edit", "delete")], "manager")
    client = login(world.users["manager"], world.ws)
    assert_refused(start(client, world, "member2"), client, "wider")
    assert_refused(start(client, world, "viewer"), client, "wider")
    manager = rbac.access_for(world.members["manager"])
    assert "leads.view [own]" in viewas.wider(rbac, manager,
                                              rbac.access_for(world.members["member2"]))
    assert "leads.view [all]" in viewas.wider(rbac, manager,
                                              rbac.access_for(world.members["viewer"]))
    review = client.get("/settings/access-review").text
    options = review.split('name="membership_id"', 1)[1].split("</select>", 1)[0]
    assert f'value="{world.members["member"].id}"' in options
    assert f'value="{world.members["member2"].id}"' not in options
    assert f'value="{world.members["viewer"].id}"' not in options
    assert start(client, world, "member").status_code == 302
    assert viewing(client) == world.members["member"].id


def test_a_visibility_level_narrows_the_viewer(world: SimpleNamespace, login: Any) -> None:
    """An Admin capped to "Own" sees no more than their team: not the Viewer's all-scope."""
    with rbac.system():
        world.members["admin"].visibility = "own"
        db.session.commit()
    admin = login(world.users["admin"], world.ws)
    assert_refused(start(admin, world, "viewer"), admin, "wider")


def test_view_as_is_limited_to_owners_and_admins_by_default(app: Flask, world: SimpleNamespace,
                                                            login: Any) -> None:
    """A custom role wider than the target still may not view as by default."""
    custom_role(world, "Wide custom", [("settings", "view", "all")] + READS_REPORTS
                + [(r, a, "all") for r in ("leads", "deals", "clients", "tasks", "notes", "invoices",
                                                                "campaigns")
                   for a in ("view", "create", "edit", "delete")], "manager")
    client = login(world.users["manager"], world.ws)
    assert_refused(start(client, world, "member"), client, "Only Owners and Admins")
    assert 'id="review-view-as-none"' in client.get("/settings/access-review").text
    app.config["RBAC_VIEW_AS_ROLES"] = None
    assert start(client, world, "member").status_code == 302


def test_view_as_ends_when_the_viewer_no_longer_covers_the_target(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Checked on every request: the target leaving the manager's team ends it."""
    app.config["RBAC_VIEW_AS_ROLES"] = None
    custom_role(world, "Manager with oversight",
                [("settings", "view", "all")] + READS_REPORTS
                + [(r, a, "team") for r in ("leads", "deals", "clients", "tasks", "notes", "invoices",
                                                                "campaigns")
                   for a in ("view", "create", "edit", "delete")], "manager")
    client = login(world.users["manager"], world.ws)
    assert start(client, world, "member").status_code == 302
    assert "rbac-view-as-banner" in client.get("/leads/").text
    m = rbac.models
    with rbac.system():
        for link in db.session.scalars(db.select(m.ManagerAssignment)):
            db.session.delete(link)
        db.session.commit()
    page = client.get("/leads/")
    assert "rbac-view-as-banner" not in page.text
    assert viewing(client) is None


def test_an_export_while_viewing_as_is_audited_and_raises_its_alert(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """View-as is read-only, but the evidence of what the viewer reads is written: the
    export's event, the export-volume alert it raises and the Owners' notification of
    it. Refusing them broke the download (the body streamed, then the commit failed)."""
    set_thresholds(world, export_rows_per_hour=1)
    admin = login(world.users["admin"], world.ws)
    start(admin, world, "manager")
    A, Alert = rbac.models.AuditEvent, rbac.models.Alert
    exports = db.session.scalar(sa.select(sa.func.count()).where(A.action == "export"))
    for _ in range(2):
        response = admin.get("/leads/export.csv")
        assert response.status_code == 200
        assert response.get_data(as_text=True).count("\n") >= 2  # the header and rows
    db.session.expire_all()
    events = db.session.scalars(sa.select(A).where(A.action == "export")
                                .order_by(A.id)).all()[exports:]
    assert len(events) == 2
    assert {ev.actor_membership_id for ev in events} == {world.members["admin"].id}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Alert).where(
        Alert.rule == "export_volume")) >= 1
    assert viewing(admin) == world.members["manager"].id  # still viewing as, still read-only
    assert admin.post("/leads/new", data={"name": "x"}).status_code in (403, 302)


def test_a_page_refused_while_viewing_as_is_the_members_refusal_and_audited(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """The viewed member's 403, not a 500: the refusal's own event (and what the alert
    rules count of it) is the trail's to write, which view-as's read-only rule lets
    through; it names the real actor."""
    # The second refusal in ten minutes raises an alert, a row of the refusals' session.
    set_thresholds(world, refusals_per_10_minutes=2)
    admin = login(world.users["admin"], world.ws)
    start(admin, world, "member2")
    A = rbac.models.AuditEvent
    before = db.session.scalar(sa.select(sa.func.count()).where(A.action == "access.denied"))
    for url in ("/settings/roles", "/invoices/", "/settings/members", "/api/v1/sharing"):
        response = admin.get(url)
        assert response.status_code == 403, (url, response.status_code)
    db.session.expire_all()
    events = db.session.scalars(sa.select(A).where(A.action == "access.denied")
                                .order_by(A.id)).all()[before:]
    assert len(events) == 4
    assert {ev.actor_membership_id for ev in events} == {world.members["admin"].id}
    assert db.session.scalar(sa.select(sa.func.count()).select_from(rbac.models.Alert)) == 1
