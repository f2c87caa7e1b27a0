"""The demo CRM's pages: sign-in, workspaces, record views, buttons, export, seed.

Every list is compared with what the plugin itself returns for the member
(``rbac.as_member``), so the pages are checked to add no filtering of their
own and to hide nothing the plugin allows. conftest's client runs each request
in a fresh app context, so several logged-in clients in one test do not share
``g`` (Flask-Login's user, the plugin's cached access).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crm_app.crm.resources import CONFIGS, config_for
from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Note, Task, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import workspaces
from crm_rbac_plugin.team import departments
from tests.conftest import build_world, empty_tables, make_app

ROLES = ["owner", "admin", "manager", "member", "member2", "viewer", "finance", "junior_rep",
         "client_success", "dual"]


@pytest.fixture
def anon(app: Flask) -> FlaskClient:
    """A client with nobody signed in (for the real login form)."""
    return app.test_client()


# -- helpers ------------------------------------------------------------------------

def row_ids(response: TestResponse) -> set[int]:
    """Ids of the records listed in a page's tables (``<tr data-id=...>``)."""
    return {int(i) for i in re.findall(r'<tr data-id="(\d+)"', response.text)}


def plugin_ids(membership: Any, model: Any, action: str = "view") -> set[int]:
    """What the plugin itself lets ``membership`` see (or ``action``) of ``model``."""
    with rbac.as_member(membership):
        return set(db.session.scalars(sa.select(model.id).execution_options(rbac_action=action)))


def may(membership: Any, action: str, resource: str, record: Any = None) -> bool:
    return rbac.can(action, resource, record, access=rbac.access_for(membership))


def fetch(model: Any, ident: int) -> Any:
    """Reload a row from the database, bypassing the filter and the identity map."""
    with rbac.system():
        return db.session.get(model, ident, populate_existing=True)


def user_by_email(email: str) -> User:
    user = db.session.scalar(sa.select(User).where(User.email == email))
    assert user is not None, email
    return user


def has_action(response: TestResponse, action: str) -> bool:
    return f'data-action="{action}"' in response.text


def record_form(response: TestResponse) -> str:
    """The record's form on a create/edit page (not the layout's own forms)."""
    match = re.search(r'<form[^>]*class="card form-card".*?</form>', response.text, re.S)
    assert match, "no record form on the page"
    return match.group(0)


def post_forms(html: str) -> list[str]:
    return re.findall(r'<form\b[^>]*method="post"[^>]*>.*?</form>', html, flags=re.S | re.I)


# -- authentication -----------------------------------------------------------------

@pytest.mark.parametrize("path", ["/", "/leads/", "/deals/export.csv", "/access", "/tasks/new"])
def test_anonymous_is_sent_to_login(app: Flask, world: SimpleNamespace, anon: FlaskClient,
                                    path: str) -> None:
    response = anon.get(path)
    assert response.status_code == 302
    assert response.headers["Location"].startswith("/login?next=")


def test_anonymous_record_page_redirects_and_discloses_nothing(
        app: Flask, world: SimpleNamespace, anon: FlaskClient) -> None:
    response = anon.get(f"/leads/{world.leads['member'].id}")
    assert response.status_code == 302
    assert "/login" in response.headers["Location"]


def test_login_and_logout(app: Flask, world: SimpleNamespace, anon: FlaskClient) -> None:
    page = anon.get("/login")
    assert page.status_code == 200 and 'name="password"' in page.text

    response = anon.post("/login?next=/leads/", data={"email": "Member@Example.test ",
                                                      "password": "password"})
    assert response.status_code == 302 and response.headers["Location"] == "/leads/"
    leads = anon.get("/leads/")
    assert leads.status_code == 200
    assert row_ids(leads) == plugin_ids(world.members["member"], Lead)
    with anon.session_transaction() as sess:
        # The first request after signing in pins the default workspace.
        assert sess[app.config["RBAC_SESSION_KEY"]] == world.ws.id

    assert anon.get("/logout").status_code == 405  # a link cannot sign anyone out
    response = anon.post("/logout")
    assert response.status_code == 302 and response.headers["Location"] == "/login"
    assert anon.get("/").status_code == 302
    with anon.session_transaction() as sess:
        assert app.config["RBAC_SESSION_KEY"] not in sess


def test_login_refuses_wrong_password_and_foreign_next(app: Flask, world: SimpleNamespace,
                                                       anon: FlaskClient) -> None:
    response = anon.post("/login", data={"email": "member@example.test", "password": "nope"})
    assert response.status_code == 200
    assert "do not match" in response.text
    assert anon.get("/").status_code == 302

    for target in ("https://evil.example/", "//evil.example/", "/\\evil.example/"):
        client = app.test_client()
        response = client.post("/login", query_string={"next": target}, data={
            "email": "member@example.test", "password": "password"})
        assert response.headers["Location"] == "/", target


def test_login_refuses_inactive_user(app: Flask, world: SimpleNamespace,
                                     anon: FlaskClient, login: Any) -> None:
    signed_in = login(world.users["viewer"], world.ws)
    assert signed_in.get("/").status_code == 200
    world.users["viewer"].is_active_user = False
    db.session.commit()

    response = anon.post("/login", data={"email": "viewer@example.test", "password": "password"})
    assert response.status_code == 200
    # The wrong password's answer: a right password must not be told apart.
    assert "That email and password do not match an account." in response.text
    assert "deactivated" not in response.text
    assert anon.get("/").status_code == 302
    # A session opened before the deactivation stops working at once.
    assert signed_in.get("/").status_code == 302


# -- workspaces ---------------------------------------------------------------------

def test_switch_workspace(app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["dual"], world.ws)
    page = client.get("/")
    assert "Acme Sales" in page.text and "Beta Education" in page.text  # the switcher
    assert client.get("/leads/").status_code == 200
    assert not has_action(client.get("/leads/"), "create")  # Viewer in Acme

    response = client.post("/settings/workspace", data={"workspace_id": world.ws2.id})
    assert response.status_code == 302
    with client.session_transaction() as sess:
        assert sess[app.config["RBAC_SESSION_KEY"]] == world.ws2.id
    leads = client.get("/leads/")
    assert row_ids(leads) == {world.other["lead"].id}  # Owner in Beta
    assert has_action(leads, "create") and has_action(leads, "export")
    assert "Owner" in client.get("/").text


@pytest.mark.parametrize("target", ["other", "missing", "garbage", "inactive"])
def test_switch_workspace_refused(app: Flask, world: SimpleNamespace, login: Any,
                                  target: str) -> None:
    user = world.users["member"]
    if target == "inactive":
        world.members["member"].status = "inactive"
        db.session.commit()
    value = {"other": world.ws2.id, "missing": 999999, "garbage": "x",
             "inactive": world.ws.id}[target]
    client = login(user, world.ws2 if target == "inactive" else world.ws)
    with client.session_transaction() as sess:
        before = sess[app.config["RBAC_SESSION_KEY"]]
    response = client.post("/settings/workspace", data={"workspace_id": value})
    assert response.status_code == 403
    assert "not an active member" in response.text
    with client.session_transaction() as sess:
        assert sess[app.config["RBAC_SESSION_KEY"]] == before


# -- lists --------------------------------------------------------------------------

@pytest.mark.parametrize("resource", [cfg.name for cfg in CONFIGS])
def test_list_shows_exactly_what_the_plugin_allows(app: Flask, world: SimpleNamespace,
                                                   login: Any, resource: str) -> None:
    model = config_for(resource).model
    for key in ROLES:
        membership = world.members[key]
        response = login(world.users[key], world.ws).get(f"/{resource}/")
        if not may(membership, "view", resource):
            assert response.status_code == 403, (key, resource)
            continue
        assert response.status_code == 200, (key, resource)
        assert row_ids(response) == plugin_ids(membership, model), (key, resource)


def test_lists_match_the_world(app: Flask, world: SimpleNamespace, login: Any) -> None:
    """Spot checks against the records the world fixture is known to hold."""
    junior = login(world.users["junior_rep"], world.ws)
    assert row_ids(junior.get("/leads/")) == {world.leads["junior_rep"].id,
                                              world.leads["unowned"].id}
    finance = login(world.users["finance"], world.ws)
    assert row_ids(finance.get("/deals/")) == {d.id for k, d in world.deals.items()
                                               if k.endswith("-won")}
    success = login(world.users["client_success"], world.ws)
    # Tasks owned by member2, visible through the client they hang on.
    assert row_ids(success.get("/tasks/")) == {t.id for k, t in world.tasks.items()
                                               if k.startswith("on-")}
    outsider = login(world.users["outsider"], world.ws2)
    assert row_ids(outsider.get("/leads/")) == {world.other["lead"].id}


def test_search_facet_and_sort(app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    assert row_ids(client.get("/leads/?q=junior")) == {world.leads["junior_rep"].id}
    assert row_ids(client.get("/leads/?q=%25")) == set()  # LIKE wildcards are literal
    won = {d.id for k, d in world.deals.items() if k.endswith("-won")}
    assert row_ids(client.get("/deals/?stage=won")) == won
    assert len(row_ids(client.get("/deals/?stage=bogus"))) == len(world.deals)
    page = client.get("/leads/?sort=name&dir=asc").text
    names = re.findall(r'class="row-title"[^>]*>([^<]+)<', page)
    assert names == sorted(names)
    # Unknown sort keys are ignored rather than reaching ORDER BY.
    assert client.get("/leads/?sort=password_hash").status_code == 200


def test_nav_and_buttons_follow_permissions(app: Flask, world: SimpleNamespace,
                                            login: Any) -> None:
    junior = login(world.users["junior_rep"], world.ws)
    page = junior.get("/leads/")
    assert has_action(page, "create") and not has_action(page, "export")
    assert 'href="/leads/"' in page.text
    assert 'href="/deals/"' not in page.text and 'href="/clients/"' not in page.text
    detail = junior.get(f"/leads/{world.leads['junior_rep'].id}")
    assert has_action(detail, "edit") and not has_action(detail, "delete")
    unowned = junior.get(f"/leads/{world.leads['unowned'].id}")
    assert unowned.status_code == 200 and not has_action(unowned, "edit")

    viewer = login(world.users["viewer"], world.ws)
    for cfg in CONFIGS:
        page = viewer.get(f"/{cfg.name}/")
        assert page.status_code == 200
        assert not any(has_action(page, a) for a in ("create", "export", "edit")), cfg.name
    detail = viewer.get(f"/leads/{world.leads['member'].id}")
    assert not has_action(detail, "edit") and not has_action(detail, "delete")

    admin = login(world.users["admin"], world.ws)
    page = admin.get("/leads/")
    assert has_action(page, "create") and has_action(page, "export")
    assert page.text.count('data-action="edit"') == len(row_ids(page))

    finance = login(world.users["finance"], world.ws)
    page = finance.get("/deals/")
    assert has_action(page, "export") and not has_action(page, "create")
    assert 'href="/leads/"' not in page.text


# -- records ------------------------------------------------------------------------

def test_record_outside_view_is_404(app: Flask, world: SimpleNamespace, login: Any) -> None:
    junior = login(world.users["junior_rep"], world.ws)
    for path in (f"/leads/{world.leads['member'].id}", f"/leads/{world.leads['member'].id}/edit",
                 f"/leads/{world.other['lead'].id}", "/leads/999999"):
        response = junior.get(path)
        assert response.status_code == 404, path
        assert "Not found" in response.text and "Tessera" in response.text  # app layout
    response = junior.post(f"/leads/{world.leads['member'].id}/delete")
    assert response.status_code == 404
    assert fetch(Lead, world.leads["member"].id) is not None


def test_visible_but_not_editable_is_403_and_unchanged(app: Flask, world: SimpleNamespace,
                                                       login: Any) -> None:
    lead = world.leads["member"]
    viewer = login(world.users["viewer"], world.ws)
    assert viewer.get(f"/leads/{lead.id}").status_code == 200
    assert viewer.get(f"/leads/{lead.id}/edit").status_code == 403
    response = viewer.post(f"/leads/{lead.id}/edit", data={"name": "Hacked", "status": "new",
                                                           "source": ""})
    assert response.status_code == 403
    assert "have access to this" in response.text
    assert viewer.post(f"/leads/{lead.id}/delete").status_code == 403
    assert fetch(Lead, lead.id).name == "Lead of member"

    won = world.deals["member-won"]
    finance = login(world.users["finance"], world.ws)
    response = finance.post(f"/deals/{won.id}/edit", data={
        "title": "Changed", "stage": "won", "amount": "1", "client_id": ""})
    assert response.status_code == 403
    assert fetch(Deal, won.id).title == "won deal of member"

    own = world.leads["junior_rep"]
    junior = login(world.users["junior_rep"], world.ws)
    assert junior.post(f"/leads/{own.id}/delete").status_code == 403
    assert fetch(Lead, own.id) is not None


def test_create_edit_delete(app: Flask, world: SimpleNamespace, login: Any) -> None:
    member = world.users["member"]
    client = login(member, world.ws)
    page = client.get("/leads/new")
    assert page.status_code == 200
    form = record_form(page)
    assert 'name="owner_id"' not in form and 'name="workspace_id"' not in form

    # owner_id and workspace_id in the post are ignored: they are not form fields.
    response = client.post("/leads/new", data={
        "name": "Ada Lovelace", "company": "Engines", "email": "ada@example.test",
        "status": "qualified", "source": "referral",
        "owner_id": world.users["member2"].id, "workspace_id": world.ws2.id})
    assert response.status_code == 302
    lead_id = int(response.headers["Location"].rsplit("/", 1)[1])
    lead = fetch(Lead, lead_id)
    assert (lead.owner_id, lead.workspace_id, lead.status) == (member.id, world.ws.id, "qualified")
    assert "Ada Lovelace" in client.get(f"/leads/{lead_id}").text

    response = client.post(f"/leads/{lead_id}/edit", data={
        "name": "Ada King", "company": "Engines", "email": "", "status": "new", "source": ""})
    assert response.status_code == 302
    assert fetch(Lead, lead_id).name == "Ada King"

    invalid = client.post(f"/leads/{lead_id}/edit", data={"name": "", "status": "nope"})
    assert invalid.status_code == 400 and "Please correct" in invalid.text
    assert fetch(Lead, lead_id).name == "Ada King"

    assert client.post(f"/leads/{lead_id}/delete").status_code == 302
    assert fetch(Lead, lead_id) is None


def test_flush_guard_refusal_is_shown_on_the_form(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    """A grant with a condition: the page allows "create", the record decides."""
    role = workspaces.role_by_key(rbac, world.ws, "junior_rep")
    workspaces.add_grant(rbac, role, "deals", "view", "own")
    workspaces.add_grant(rbac, role, "deals", "create", "own",
                         condition=[{"field": "stage", "op": "eq", "value": "new"}])
    db.session.commit()
    junior = login(world.users["junior_rep"], world.ws)
    data = {"title": "Fresh deal", "stage": "won", "amount": "100", "client_id": ""}
    response = junior.post("/deals/new", data=data)
    assert response.status_code == 403
    assert "You may not create" in response.text and 'value="Fresh deal"' in response.text
    with rbac.system():
        assert db.session.scalar(sa.select(Deal.id).where(Deal.title == "Fresh deal")) is None
    response = junior.post("/deals/new", data={**data, "stage": "new"})
    assert response.status_code == 302


def test_owner_select_only_for_members_who_manage(app: Flask, world: SimpleNamespace,
                                                  login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    form = record_form(admin.get("/deals/new"))
    assert 'name="owner_id"' in form
    assert world.users["member2"].name in form
    assert world.users["outsider"].name not in form  # not a member of Acme
    response = admin.post("/deals/new", data={
        "title": "Big one", "stage": "proposal", "amount": "5000", "client_id": "",
        "owner_id": world.users["member2"].id})
    assert response.status_code == 302
    deal = fetch(Deal, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert (deal.owner_id, deal.workspace_id) == (world.users["member2"].id, world.ws.id)

    # Reassigning an existing record, including to "Unassigned" when it had no owner.
    lead = world.leads["unowned"]
    assert "Unassigned" in record_form(admin.get(f"/leads/{lead.id}/edit"))
    response = admin.post(f"/leads/{lead.id}/edit", data={
        "name": lead.name, "status": "new", "source": "", "owner_id": world.users["member"].id})
    assert response.status_code == 302
    assert fetch(Lead, lead.id).owner_id == world.users["member"].id

    manager = login(world.users["manager"], world.ws)
    assert 'name="owner_id"' not in record_form(manager.get("/deals/new"))


def test_client_select_offers_only_visible_clients(app: Flask, world: SimpleNamespace,
                                                   login: Any) -> None:
    member = login(world.users["member"], world.ws)
    form = record_form(member.get(f"/tasks/new?client_id={world.clients['member'].id}"))
    options = set(map(int, re.findall(r'<option[^>]*value="(\d+)"', form)))
    assert options == plugin_ids(world.members["member"], Client)
    assert f'<option selected value="{world.clients["member"].id}">' in form

    hidden = world.clients["member2"]
    response = member.post("/tasks/new", data={"title": "Sneaky", "status": "open",
                                               "client_id": hidden.id})
    assert response.status_code == 400 and "Not a valid choice" in response.text
    with rbac.system():
        assert db.session.scalar(sa.select(Task.id).where(Task.title == "Sneaky")) is None

    response = member.post("/tasks/new", data={"title": "Call back", "status": "open",
                                               "client_id": world.clients["member"].id,
                                               "due_date": "2030-01-31"})
    assert response.status_code == 302
    task = fetch(Task, int(response.headers["Location"].rsplit("/", 1)[1]))
    assert (task.client_id, task.owner_id) == (world.clients["member"].id,
                                               world.users["member"].id)


def test_client_detail_lists_visible_children(app: Flask, world: SimpleNamespace,
                                              login: Any) -> None:
    client = world.clients["member"]
    for key in ("member", "client_success", "admin"):
        membership = world.members[key]
        page = login(world.users[key], world.ws).get(f"/clients/{client.id}")
        assert page.status_code == 200, key
        expected: set[int] = set()
        for resource, model in (("deals", Deal), ("tasks", Task), ("notes", Note)):
            if may(membership, "view", resource):
                with rbac.as_member(membership):
                    expected |= set(db.session.scalars(
                        sa.select(model.id).where(model.client_id == client.id)))
        assert row_ids(page) == expected, key
    assert "Note on Client of member" in login(world.users["member"], world.ws).get(
        f"/clients/{client.id}").text


# -- export -------------------------------------------------------------------------

def read_csv(response: TestResponse) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(response.get_data(as_text=True))))


def test_export_gives_the_rows_the_member_may_export(app: Flask, world: SimpleNamespace,
                                                     login: Any) -> None:
    finance = login(world.users["finance"], world.ws)
    response = finance.get("/deals/export.csv")
    assert response.status_code == 200
    assert response.mimetype == "text/csv"
    assert "attachment" in response.headers["Content-Disposition"]
    rows = read_csv(response)
    ids = {int(r["ID"]) for r in rows}
    assert ids == plugin_ids(world.members["finance"], Deal, "export")
    assert ids == {d.id for k, d in world.deals.items() if k.endswith("-won")}
    assert {r["Stage"] for r in rows} == {"won"}
    assert {r["Owner"] for r in rows} >= {"Member", "Unassigned"}  # named as on the list

    manager = login(world.users["manager"], world.ws)
    rows = read_csv(manager.get("/leads/export.csv"))
    assert {int(r["ID"]) for r in rows} == plugin_ids(world.members["manager"], Lead, "export")
    rows = read_csv(manager.get("/leads/export.csv?q=Lead+of+member"))
    assert {int(r["ID"]) for r in rows} == {world.leads["member"].id}

    junior = login(world.users["junior_rep"], world.ws)
    assert junior.get("/leads/export.csv").status_code == 403
    assert login(world.users["viewer"], world.ws).get("/deals/export.csv").status_code == 403


def test_export_neutralises_formulas(app: Flask, world: SimpleNamespace, login: Any) -> None:
    with rbac.system():
        lead = fetch(Lead, world.leads["member"].id)
        lead.name = "=HYPERLINK(\"http://evil\")"
        db.session.commit()
    rows = read_csv(login(world.users["owner"], world.ws).get("/leads/export.csv"))
    assert any(r["Name"].startswith("'=HYPERLINK") for r in rows)


# -- dashboard, access page, error pages --------------------------------------------

def test_dashboard_counts_and_roles(app: Flask, world: SimpleNamespace, login: Any) -> None:
    for key in ("member", "finance", "junior_rep", "client_success"):
        membership = world.members[key]
        page = login(world.users[key], world.ws).get("/")
        assert page.status_code == 200
        shown = dict(re.findall(r'data-resource="(\w+)">.*?data-count="(\d+)"', page.text, re.S))
        expected = {cfg.name: str(len(plugin_ids(membership, cfg.model))) for cfg in CONFIGS
                    if may(membership, "view", cfg.name)}
        assert shown == expected, key
        access = rbac.access_for(membership)
        assert access is not None
        for role in access.roles:
            assert role in page.text


def test_access_page_shows_the_plugin_decisions(app: Flask, world: SimpleNamespace,
                                                login: Any) -> None:
    page = login(world.users["finance"], world.ws).get("/access").text
    cells = {}
    for resource, body in re.findall(r'<tr data-resource="(\w+)">(.*?)</tr>', page, re.S):
        for action, allowed in re.findall(r'data-action="(\w+)" data-allowed="(\w+)"', body):
            cells[(resource, action)] = allowed == "yes"
    access = rbac.access_for(world.members["finance"])
    for res in rbac.registry:
        for action in res.actions:
            assert cells[(res.name, action)] == rbac.can(action, res.name, access=access)
    assert cells[("deals", "export")] and not cells[("deals", "edit")]
    assert "stage in (won, lost)" in page


def test_access_page_shows_the_scope_a_visibility_level_leaves(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    """An Admin capped to their own records sees "Own", as every list filters them."""
    departments.set_visibility(rbac, rbac.access_for(world.members["owner"]),
                               world.members["admin"], "own")
    db.session.commit()
    page = login(world.users["admin"], world.ws).get("/access").text
    row = re.search(r'<tr data-resource="leads">(.*?)</tr>', page, re.S).group(1)
    assert ">Own<" in row and ">All<" not in row
    assert "capped by your visibility" in row

def test_error_pages(app: Flask, world: SimpleNamespace, anon: FlaskClient,
                     login: Any) -> None:
    response = anon.get("/no-such-page")
    assert response.status_code == 404 and "find that page" in response.text
    response = login(world.users["member"], world.ws).get("/no-such-page")
    assert response.status_code == 404 and "Sign out" in response.text  # inside the layout
    response = anon.get("/no-such-page", headers={"Accept": "application/json"})
    assert response.status_code == 404 and response.get_json()["error"] == "not_found"


def test_member_without_workspace_sees_an_empty_state(app: Flask, world: SimpleNamespace,
                                                      login: Any) -> None:
    world.members["junior_rep"].status = "inactive"
    db.session.commit()
    client = login(world.users["junior_rep"], world.ws)
    assert "No active membership here" in client.get("/").text
    assert "No access in this workspace" in client.get("/access").text
    assert client.get("/leads/").status_code == 403


# -- CSRF (the tests above run with it off) -----------------------------------------

@pytest.fixture
def csrf_app() -> Iterator[Flask]:
    app = make_app("sqlite://", WTF_CSRF_ENABLED=True)
    with app.app_context():
        db.create_all()
        yield app
        db.session.remove()
        empty_tables()
        db.engine.dispose()


def token_in(html: str) -> str:
    match = re.search(r'name="csrf_token" type="hidden" value="([^"]+)"', html) or re.search(
        r'name="csrf_token" value="([^"]+)"', html)
    assert match, "no CSRF token in the page"
    return match.group(1)


def test_every_post_form_carries_a_csrf_token(csrf_app: Flask) -> None:
    world = build_world()
    client = csrf_app.test_client()
    login_page = client.get("/login").text
    assert client.post("/login", data={"email": "admin@example.test",
                                       "password": "password"}).status_code == 400
    response = client.post("/login", data={"email": "admin@example.test", "password": "password",
                                           "csrf_token": token_in(login_page)})
    assert response.status_code == 302
    pages = ["/", "/leads/", f"/leads/{world.leads['member'].id}", "/leads/new",
             f"/clients/{world.clients['member'].id}/edit", "/access"]
    for path in pages:
        html = client.get(path).text
        forms = post_forms(html)
        assert forms, path
        for form in forms:
            assert 'name="csrf_token"' in form, (path, form[:120])
    page = client.get("/").text
    assert client.post("/logout").status_code == 400
    assert client.post("/logout", data={"csrf_token": token_in(page)}).status_code == 302


# -- demo seed ----------------------------------------------------------------------

def test_demo_seed_command(app: Flask, anon: FlaskClient, login: Any) -> None:
    runner = app.test_cli_runner()
    result = runner.invoke(args=["demo", "seed", "--scale", "0.05"])
    assert result.exit_code == 0, result.output
    assert "demo1234" in result.output and "junior@acme.test" in result.output
    assert "http://127.0.0.1:5000" in result.output
    m = rbac.models
    with rbac.system():
        counts = {model.__name__: db.session.scalar(sa.select(sa.func.count()).select_from(model))
                  for model in (Lead, Deal, Client, Task, Note)}
        plans = {slug: plan for slug, plan in db.session.execute(
            sa.select(m.Workspace.slug, m.Workspace.plan))}
    assert counts["Lead"] == 75 and counts["Deal"] == 40 and counts["Client"] == 23
    assert plans == {"acme": "enterprise", "beta": "free"}

    again = runner.invoke(args=["demo", "seed", "--scale", "0.05"])
    assert again.exit_code == 0 and "already present" in again.output
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 75

    declined = runner.invoke(args=["demo", "seed", "--reset"], input="n\n")
    assert declined.exit_code == 1 and "Aborted" in declined.output
    reset = runner.invoke(args=["demo", "seed", "--reset", "--yes", "--scale", "0.02"])
    assert reset.exit_code == 0, reset.output
    with rbac.system():
        assert db.session.scalar(sa.select(sa.func.count()).select_from(Lead)) == 30
        assert db.session.scalar(sa.select(sa.func.count()).select_from(m.Workspace)) == 2
    db.session.expire_all()

    # The seeded logins work, and each sees what their role allows.
    response = anon.post("/login", data={"email": "junior@acme.test", "password": "demo1234"})
    assert response.status_code == 302
    junior = user_by_email("junior@acme.test")
    membership = db.session.scalar(
        sa.select(m.Membership).where(m.Membership.user_id == junior.id))
    assert row_ids(anon.get("/leads/")) == plugin_ids(membership, Lead)
    dual = user_by_email("dual@example.test")
    beta = db.session.scalar(sa.select(m.Workspace).where(m.Workspace.slug == "beta"))
    in_beta = login(dual, beta)
    assert in_beta.get("/leads/").status_code == 403  # the free plan has no sales module
    assert in_beta.get("/clients/").status_code == 200


def test_pagination(app: Flask, login: Any) -> None:
    assert app.test_cli_runner().invoke(args=["demo", "seed", "--scale", "0.05"]).exit_code == 0
    owner = user_by_email("owner@acme.test")
    acme = db.session.scalar(sa.select(rbac.models.Workspace).where(
        rbac.models.Workspace.slug == "acme"))
    client = login(owner, acme)
    seen: set[int] = set()
    for page in (1, 2, 3):
        ids = row_ids(client.get(f"/leads/?page={page}"))
        assert len(ids) == 25 and not ids & seen
        seen |= ids
    assert row_ids(client.get("/leads/?page=4")) == set()
    assert "1–25 of 75" in client.get("/leads/").text
