"""Flask-Admin panels as each default role: access, scoping, buttons, writes, hidden fields."""

from __future__ import annotations

import csv
import io
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa

from crm_app.extensions import db
from crm_app.models import Deal, Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import role

ROLES = ["owner", "admin", "manager", "member", "viewer", "finance", "junior_rep",
         "client_success"]

#: Who reaches which panel (200) and who is refused (403). The plugin's panels follow the
#: permission of their settings page: roles.view, members.view (the Manager's too),
#: settings.view for agreements, and settings.manage for the trail as stored.
PANELS = {
    "/admin/leads/": {"owner", "admin", "manager", "member", "viewer", "junior_rep"},
    "/admin/deals/": {"owner", "admin", "manager", "member", "viewer", "finance"},
    "/admin/clients/": {"owner", "admin", "manager", "member", "viewer", "client_success"},
    "/admin/tasks/": {"owner", "admin", "manager", "member", "viewer", "client_success"},
    "/admin/rbac_admin_roles/": {"owner", "admin"},
    "/admin/rbac_admin_members/": {"owner", "admin", "manager"},
    "/admin/rbac_admin_departments/": {"owner", "admin", "manager"},
    "/admin/rbac_admin_audit/": {"owner", "admin"},
    "/admin/rbac_admin_sharing/": {"owner", "admin"},
}


def stored(model: type, ident: int) -> Any:
    db.session.expire_all()
    with rbac.system():
        return db.session.get(model, ident)


@pytest.mark.parametrize("who", ROLES)
def test_panels_as_each_default_role(world: SimpleNamespace, login: Any, who: str) -> None:
    client = login(world.users[who], world.ws)
    index = client.get("/admin/")
    assert index.status_code == 200
    for url, allowed in PANELS.items():
        response = client.get(url)
        assert response.status_code == (200 if who in allowed else 403), (who, url)
        # The menu shows only the panels the member may open.
        assert (f'href="{url}"' in index.text) == (who in allowed), (who, url)


def test_anonymous_is_sent_to_login(app: Any) -> None:
    response = app.test_client().get("/admin/leads/")
    assert response.status_code == 302 and "/login" in response.headers["Location"]


def test_lists_and_ids_are_scoped(world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    page = member.get("/admin/leads/").text
    assert "Lead of member" in page and "Lead of manager" not in page
    assert "Beta lead" not in page
    theirs, own = world.leads["manager"].id, world.leads["member"].id
    for view in ("edit", "details"):
        assert member.get(f"/admin/leads/{view}/?id={theirs}").status_code == 404
        assert member.get(f"/admin/leads/{view}/?id={world.other['lead'].id}").status_code == 404
        assert member.get(f"/admin/leads/{view}/?id=nonsense").status_code == 404
        assert member.get(f"/admin/leads/{view}/?id={own}").status_code == 200
    admin = login(world.users["admin"], world.ws)
    roles_page = admin.get("/admin/rbac_admin_members/").text
    assert "Outsider" not in roles_page and "Member2" in roles_page


def test_sharing_panel_shows_both_sides_and_nothing_else(world: SimpleNamespace,
                                                         login: Any) -> None:
    """An agreement is listed for its two workspaces only, read-only."""
    from crm_rbac_plugin import sharing, workspaces

    third = workspaces.create_workspace(rbac, "Gamma", owner=world.users["outsider"],
                                        slug="gamma")
    db.session.commit()
    owner = rbac.access_for(world.members["owner"])
    with rbac.as_member(owner):
        mine = sharing.create_agreement(rbac, owner, workspace="beta",
                                        permissions=["clients.view"], notes="acme to beta")
        db.session.commit()
    gamma = rbac.access_for(db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == third.id)))
    with rbac.as_member(gamma):
        sharing.create_agreement(rbac, gamma, workspace="beta", permissions=["leads.view"],
                                 notes="gamma to beta")
        db.session.commit()
    acme = login(world.users["owner"], world.ws).get("/admin/rbac_admin_sharing/").text
    assert "acme to beta" in acme and "gamma to beta" not in acme
    beta = login(world.users["dual"], world.ws2).get("/admin/rbac_admin_sharing/").text
    assert "acme to beta" in beta and "gamma to beta" in beta
    assert "/admin/rbac_admin_sharing/edit/" not in acme
    assert login(world.users["owner"], world.ws).get(
        f"/admin/rbac_admin_sharing/details/?id={mine.id}").status_code == 200


def test_buttons_follow_permissions(world: SimpleNamespace, login: Any) -> None:
    viewer = login(world.users["viewer"], world.ws).get("/admin/leads/").text
    assert "/admin/leads/new/" not in viewer and "/admin/leads/edit/" not in viewer
    assert "/admin/leads/export/csv/" not in viewer
    member = login(world.users["member"], world.ws).get("/admin/leads/").text
    assert "/admin/leads/new/" in member and "/admin/leads/edit/" in member
    manager = login(world.users["manager"], world.ws).get("/admin/leads/").text
    assert "/admin/leads/export/csv/" in manager
    roles = login(world.users["owner"], world.ws).get("/admin/rbac_admin_roles/").text
    assert "/admin/rbac_admin_roles/new/" not in roles  # read-only panels


def test_writes_are_checked(world: SimpleNamespace, login: Any) -> None:
    member = login(world.users["member"], world.ws)
    response = member.post("/admin/leads/new/", data={"name": "From admin", "status": "new"})
    assert response.status_code == 302
    with rbac.system():
        lead = db.session.scalar(sa.select(Lead).where(Lead.name == "From admin"))
    assert lead is not None and lead.owner_id == world.users["member"].id

    viewer = login(world.users["viewer"], world.ws)
    viewer.post("/admin/leads/new/", data={"name": "Viewer lead", "status": "new"})
    with rbac.system():
        assert db.session.scalar(sa.select(Lead).where(Lead.name == "Viewer lead")) is None
    viewer.post("/admin/leads/delete/", data={"id": str(world.leads["member"].id)})
    assert stored(Lead, world.leads["member"].id) is not None

    junior = login(world.users["junior_rep"], world.ws)  # view/create/edit own, no delete
    junior.post("/admin/leads/delete/", data={"id": str(world.leads["junior_rep"].id)})
    assert stored(Lead, world.leads["junior_rep"].id) is not None

    member.post("/admin/leads/delete/", data={"id": str(lead.id)})
    assert stored(Lead, lead.id) is None


def test_the_edit_form_of_a_record_one_may_only_view_is_refused(world: SimpleNamespace,
                                                                login: Any) -> None:
    """Leads viewed at all scope but edited at own scope: another's lead opens in the
    details view, and its edit form is a 403, as the app's own edit page answers."""
    r = rbac.models.Role(workspace=world.ws, name="Reads all, edits own")
    workspaces.add_grant(rbac, r, "leads", "view", "all")
    workspaces.add_grant(rbac, r, "leads", "edit", "own")
    db.session.add(r)
    workspaces.assign_role(rbac, world.members["viewer"], r)
    db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    other = world.leads["member"].id
    assert viewer.get(f"/admin/leads/details/?id={other}").status_code == 200
    assert viewer.get(f"/admin/leads/edit/?id={other}").status_code == 403
    assert viewer.post(f"/admin/leads/edit/?id={other}",
                       data={"name": "Changed", "status": "new"}).status_code == 403
    assert stored(Lead, other).name == "Lead of member"

def test_mass_delete_needs_bulk_and_is_all_or_nothing(world: SimpleNamespace,
                                                      login: Any) -> None:
    member = login(world.users["member"], world.ws)
    ids = [world.leads["member"].id, world.leads["manager"].id]  # the second is invisible
    data = {"action": "delete", "rowid": [str(i) for i in ids]}
    member.post("/admin/leads/action/", data=data)  # Member holds no "bulk" on leads
    assert stored(Lead, ids[0]) is not None

    with rbac.system():
        bulk = rbac.models.Role(workspace=world.ws, name="Bulk own")
        workspaces.add_grant(rbac, bulk, "leads", "bulk", "own")
        workspaces.assign_role(rbac, world.members["member"], bulk)
        db.session.commit()
    # One invisible record among the selection: a 404 and nothing is deleted.
    assert member.post("/admin/leads/action/", data=data).status_code == 404
    assert stored(Lead, ids[0]) is not None and stored(Lead, ids[1]) is not None
    member.post("/admin/leads/action/", data={"action": "delete", "rowid": [str(ids[0])]})
    assert stored(Lead, ids[0]) is None and stored(Lead, ids[1]) is not None


def test_hidden_fields_leave_lists_details_forms_and_export(world: SimpleNamespace,
                                                            login: Any) -> None:
    with rbac.system():
        for key in ("finance", "member"):
            db.session.add(rbac.models.FieldRule(role=role(world, key), resource="deals",
                                                 field="amount", mode="hidden"))
        db.session.commit()
    finance = login(world.users["finance"], world.ws)
    won = world.deals["member-won"]
    assert "Amount" not in finance.get("/admin/deals/").text
    assert "Amount" not in finance.get(f"/admin/deals/details/?id={won.id}").text
    exported = finance.get("/admin/deals/export/csv/")
    assert exported.status_code == 200
    rows = list(csv.reader(io.StringIO(exported.text)))
    assert "Amount" not in rows[0] and "Title" in rows[0]
    assert {r[rows[0].index("Title")] for r in rows[1:]} == {
        d.title for d in world.deals.values() if d.stage == "won"}  # export criteria
    A = rbac.models.AuditEvent
    ev = db.session.scalars(sa.select(A).where(A.action == "export").order_by(A.id.desc())).first()
    assert ev.detail["rows"] == len(rows) - 1 and ev.detail["via"] == "admin"

    member = login(world.users["member"], world.ws)
    form = member.get("/admin/deals/new/").text
    assert 'name="amount"' not in form and 'name="title"' in form
    assert 'name="amount"' in login(world.users["admin"], world.ws).get("/admin/deals/new/").text
    own = world.deals["member-new"]
    member.post(f"/admin/deals/edit/?id={own.id}", data={"title": "Renamed", "stage": "new",
                                                          "amount": "999999"})
    saved = stored(Deal, own.id)
    assert saved.title == "Renamed" and saved.amount != 999999


def test_search_on_a_hidden_field_is_ignored(world: SimpleNamespace, login: Any) -> None:
    with rbac.system():
        db.session.add(rbac.models.FieldRule(role=role(world, "viewer"), resource="leads",
                                             field="name", mode="hidden"))
        db.session.commit()
    viewer = login(world.users["viewer"], world.ws)
    page = viewer.get("/admin/leads/?search=member2").text
    # Searching names would tell which leads carry "member2": the search is dropped.
    assert page.count("/admin/leads/details/?id=") == 5
    admin = login(world.users["admin"], world.ws)
    assert admin.get("/admin/leads/?search=member2").text.count("/admin/leads/details/?id=") == 1


def test_admin_forms_refuse_what_the_crm_forms_refuse(world: SimpleNamespace,
                                                      login: Any) -> None:
    """A stage or status is one of the column's choices, an amount is in the forms' range:
    Flask-Admin stored a deal of -5.00 and a stage "bogus"."""
    owner = login(world.users["owner"], world.ws)
    before = db.session.scalar(sa.select(sa.func.count()).select_from(Deal))
    negative = owner.post("/admin/deals/new/", data={"title": "adm -5", "stage": "new",
                                                      "amount": "-5"})
    assert negative.status_code == 200 and "Number must be between 0" in negative.text
    bogus = owner.post("/admin/deals/new/", data={"title": "adm bogus", "stage": "bogus",
                                                   "amount": "5"})
    assert bogus.status_code == 200 and "Choose one of new" in bogus.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(Deal)) == before
    deal = world.deals["member-new"]
    edited = owner.post(f"/admin/deals/edit/?id={deal.id}", data={
        "title": deal.title, "stage": "bogus", "amount": "1"})
    assert edited.status_code == 200 and "Choose one of new" in edited.text
    db.session.expire_all()
    assert db.session.get(Deal, deal.id).stage == "new"
    fine = owner.post("/admin/deals/new/", data={"title": "adm fine", "stage": "won",
                                                  "amount": "5"})
    assert fine.status_code == 302


#: Values each CRM form refuses, posted to the matching Flask-Admin panel: (panel, a
#: valid form, the field set to a bad value, the message the panel shows).
REFUSED = [
    ("leads", {"name": "adm lead", "status": "new", "source": "", "email": ""},
     {"name": "   "}, "This field is required."),
    ("leads", {"name": "adm lead", "status": "new", "source": "", "email": ""},
     {"email": "not an email"}, "Enter an email address"),
    ("leads", {"name": "adm lead", "status": "new", "source": "", "email": ""},
     {"source": "hacker<script>"}, "Choose one of website"),
    ("clients", {"name": "adm client", "region": "", "email": ""},
     {"region": "mars"}, "Choose one of north"),
    ("clients", {"name": "adm client", "region": "", "email": ""},
     {"email": "x"}, "Enter an email address"),
    ("deals", {"title": "adm deal", "stage": "new", "amount": "5"},
     {"title": " "}, "This field is required."),
    ("tasks", {"title": "adm task", "status": "open"}, {"title": "\t "}, "This field is required."),
    ("invoices", {"number": "INV-adm", "status": "draft", "amount": "5"},
     {"number": "  "}, "This field is required."),
]


@pytest.mark.parametrize(("panel", "valid", "bad", "message"), REFUSED,
                         ids=[f"{p}-{next(iter(b))}" for p, _, b, _ in REFUSED])
def test_admin_panels_refuse_each_value_the_crm_form_refuses(
        world: SimpleNamespace, login: Any, panel: str, valid: dict[str, str],
        bad: dict[str, str], message: str) -> None:
    """Required text after strip, an email's form and a column's choices, as in crm.forms;
    the same form with good values is saved, and a blank source or region means none."""
    world.ws.plan = "enterprise"  # invoices belong to the Accounting module
    db.session.commit()
    owner = login(world.users["owner"], world.ws)
    model = rbac.registry.get(panel).model
    before = db.session.scalar(sa.select(sa.func.count()).select_from(model))
    refused = owner.post(f"/admin/{panel}/new/", data={**valid, **bad})
    assert refused.status_code == 200 and message in refused.text
    assert db.session.scalar(sa.select(sa.func.count()).select_from(model)) == before
    good = {"source": "referral", "region": "west", "email": "ana@example.test"}
    fine = owner.post(f"/admin/{panel}/new/",
                      data={k: good.get(k, v) if v == "" else v for k, v in valid.items()})
    assert fine.status_code == 302
    assert owner.post(f"/admin/{panel}/new/", data=valid).status_code == 302


#: Query strings of odd values for every admin list and export: none is a 500.
ODD_QUERIES = [
    "export_type=1", "export_type=csv&page=2", "page_size=-1", "page_size=abc",
    "page_size=100000", "page=-3", "page=abc", "page=99999", "sort=999", "sort=-1",
    "sort=abc", "desc=abc", "sort=0&desc=1", "search=%00", "search=" + "x" * 2000,
    "flt0_0=x", "flt99_99=x", "id=abc", "url=x", "endpoint=x", "self=x", "_scheme=ftp",
    "_external=1", "_method=POST", "_anchor=x", "page_size=20&page_size=abc", "extra=1",
]


@pytest.mark.parametrize("who", ["owner", "manager"])
def test_odd_query_parameters_never_make_a_500(world: SimpleNamespace, login: Any,
                                               who: str) -> None:
    """Flask-Admin passes the query's parameters on to ``url_for`` in its list links:
    ``export_type`` was given twice to the export button's, a 500 for anyone who saw it."""
    world.ws.plan = "enterprise"
    db.session.commit()
    client = login(world.users[who], world.ws)
    panels = [url for url, allowed in PANELS.items() if who in allowed] + ["/admin/invoices/"]
    for url in panels:
        for query in ODD_QUERIES:
            for page in (url, f"{url}export/csv/"):
                response = client.get(f"{page}?{query}")
                assert response.status_code < 500, (page, query)
        refused = client.get(f"{url}?export_type=1")
        assert refused.status_code == 400 and "export_type" in refused.text, url
