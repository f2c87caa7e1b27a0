"""The settings pages: roles and their matrix, members' access, SoD, plan, API tokens.

Every page goes through the service layer (crm_rbac_plugin.roles), so these
tests check the pages' own job: who reaches which page, that the form fields
round-trip to the same grants, that previews and refusals write nothing
(a snapshot of every policy table before and after), and that the service's
errors come back at the right field with 400 or 403.
"""

from __future__ import annotations

import datetime as dt
import re
from html.parser import HTMLParser
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import STANDARD_ACTIONS, Resource, tokens, workspaces
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.registry import Registry
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)

CLOSED = '[{"field": "stage", "op": "in", "value": ["won", "lost"]}]'


# -- fixtures and helpers -----------------------------------------------------------


def role(world: SimpleNamespace, key: str) -> Any:
    return workspaces.role_by_key(rbac, world.ws, key)


def give_role_admin(world: SimpleNamespace, who: str) -> Any:
    """Let ``who`` manage roles and members without widening their data access."""
    r = rbac.models.Role(workspace=world.ws, name=f"Role admin {who}")
    for resource in ("roles", "members"):
        for action in ("view", "create", "edit", "delete", "manage"):
            workspaces.add_grant(rbac, r, resource, action, "all")
    workspaces.assign_role(rbac, world.members[who], r)
    db.session.commit()
    return r


def policy_snapshot() -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the plugin's policy tables, as stored (to prove nothing changed).

    Tokens are left out: a token request records its last use; so is a
    member's ``last_seen_at``, which any request records (at most every few minutes).
    """
    m = rbac.models
    db.session.expire_all()
    out = {}
    for model in (m.Workspace, m.Membership, m.Role, m.Grant, m.MemberRole, m.FieldRule,
                  m.RoleConflict):
        table = model.__table__
        columns = [c for c in table.columns if c.name != "last_seen_at"]
        rows = db.session.execute(sa.select(*columns).order_by(*table.primary_key.columns))
        out[table.name] = [tuple(row) for row in rows]
    return out


def grants_of(role_id: int) -> set[tuple[Any, ...]]:
    G = rbac.models.Grant
    return {(g.resource, g.action, g.scope, g.effect, str(g.condition or ""))
            for g in db.session.execute(sa.select(G).where(G.role_id == role_id)).scalars()}


def role_named(name: str) -> Any:
    db.session.expire_all()
    Role = rbac.models.Role
    return db.session.scalar(sa.select(Role).where(Role.name == name))


class _FormValues(HTMLParser):
    """The values a browser would submit from the first ``<form>`` with ``marker``."""

    def __init__(self, marker: str) -> None:
        super().__init__()
        self.marker = marker
        self.values: dict[str, str] = {}
        self.state = "before"  # before, inside, after
        self.select: str | None = None
        self.textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and self.state == "before" and self.marker in a:
            self.state = "inside"
        if self.state != "inside":
            return
        name = a.get("name")
        if tag == "input" and name and a.get("type", "text") not in ("submit", "button"):
            if a.get("type") != "checkbox" or "checked" in a:
                self.values[name] = a.get("value", "on")
        elif tag == "select" and name:
            self.select = name
        elif tag == "option" and self.select:
            if "selected" in a or self.select not in self.values:
                self.values[self.select] = a.get("value", "")
        elif tag == "textarea" and name:
            self.textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form" and self.state == "inside":
            self.state = "after"
        elif tag == "select":
            self.select = None
        elif tag == "textarea":
            self.textarea = None

    def handle_data(self, data: str) -> None:
        if self.textarea:
            self.values[self.textarea] += data.removeprefix("\r\n").removeprefix("\n")


def form_values(html: str, marker: str = "data-rbac-matrix") -> dict[str, str]:
    parser = _FormValues(marker)
    parser.feed(html)
    return parser.values


def matrix_values(client: FlaskClient, url: str) -> dict[str, str]:
    response = client.get(url)
    assert response.status_code == 200, response.text[:500]
    return form_values(response.text)


def granted(values: dict[str, str]) -> dict[str, str]:
    """The scope of every granted cell of a parsed matrix form."""
    return {k.removeprefix("scope__"): v for k, v in values.items()
            if k.startswith("scope__") and v}


def errors_in(response: TestResponse) -> str:
    """The text of the page's error messages (field and page level)."""
    return " ".join(re.findall(r'<(?:li|p)>([^<]*)</(?:li|p)>', response.text.split(
        'class="rbac-settings"', 1)[-1]))


# -- who reaches which page ---------------------------------------------------------------

PAGES = ["roles", "new_role", "edit_role", "delete_role", "compare", "members", "member_access",
         "conflicts", "plan", "tokens"]

ACCESS = {
    # actor: pages answering 200 (every other page answers 403)
    "owner": set(PAGES),
    "admin": set(PAGES),  # the plan page through billing.view
    "manager": {"members", "member_access", "tokens"},
    "manager+": {"roles", "new_role", "edit_role", "delete_role", "compare", "members",
                 "member_access", "conflicts", "tokens"},
    "member": {"tokens"},
    "viewer": {"tokens"},
}


def page_url(world: SimpleNamespace, page: str) -> str:
    target = role(world, "junior_rep").id
    return {
        "roles": "/settings/roles", "new_role": "/settings/roles/new",
        "edit_role": f"/settings/roles/{target}/edit",
        "delete_role": f"/settings/roles/{target}/delete",
        "compare": "/settings/roles/compare", "members": "/settings/members",
        "member_access": f"/settings/members/{world.members['member'].id}/access",
        "conflicts": "/settings/conflicts", "plan": "/settings/plan",
        "tokens": "/settings/tokens",
    }[page]


@pytest.mark.parametrize("actor", list(ACCESS))
def test_who_reaches_which_page(world: SimpleNamespace, login: Any, actor: str) -> None:
    key = actor.rstrip("+")
    if actor.endswith("+"):
        give_role_admin(world, key)
    client = login(world.users[key], world.ws)
    got = {page: client.get(page_url(world, page)).status_code for page in PAGES}
    assert got == {page: 200 if page in ACCESS[actor] else 403 for page in PAGES}


def test_anonymous_is_sent_to_login_and_other_workspaces_are_404(
        app: Flask, world: SimpleNamespace, login: Any) -> None:
    anonymous = app.test_client()
    for url in ("/settings/roles", "/settings/members", "/settings/tokens", "/settings/plan"):
        response = anonymous.get(url)
        assert response.status_code == 302 and "/login" in response.headers["Location"]
    owner = login(world.users["owner"], world.ws)
    other_role = workspaces.role_by_key(rbac, world.ws2, "manager")
    other_member = db.session.scalar(sa.select(rbac.models.Membership).where(
        rbac.models.Membership.workspace_id == world.ws2.id))
    assert owner.get(f"/settings/roles/{other_role.id}/edit").status_code == 404
    assert owner.get(f"/settings/roles/{other_role.id}/delete").status_code == 404
    assert owner.get(f"/settings/roles/new?clone={other_role.id}").status_code == 404
    assert owner.get(f"/settings/members/{other_member.id}/access").status_code == 404


def test_roles_list_shows_counts_badges_and_only_allowed_actions(
        world: SimpleNamespace, login: Any) -> None:
    owner = login(world.users["owner"], world.ws).get("/settings/roles").text
    member_row = re.search(r"<th scope=\"row\">Member <span.*?</tr>", owner, re.S).group(0)
    member_id = role(world, "member").id
    assert "built-in" in member_row
    assert re.search(rf'href="/settings/members\?role={member_id}"[^>]*>2</a>', member_row)
    assert f"/settings/roles/{member_id}/edit" in owner
    for fixed in ("owner", "admin"):  # always full access: only viewed, never deleted
        row = re.search(rf'<th scope="row">{fixed.title()} <span.*?</tr>', owner, re.S).group(0)
        assert re.search(rf'href="/settings/roles/{role(world, fixed).id}/edit"[^>]*>View</a>',
                         row)
        assert f"/settings/roles/{role(world, fixed).id}/delete" not in owner
    assert f"/settings/roles/new?clone={role(world, 'owner').id}\"" not in owner
    assert f"/settings/roles/new?clone={role(world, 'admin').id}\"" in owner

    give_role_admin(world, "manager")
    manager = login(world.users["manager"], world.ws).get("/settings/roles").text
    # Junior Rep (own) is within the Manager's team scope; Viewer (all) is not.
    assert re.search(rf"/settings/roles/{role(world, 'junior_rep').id}/edit\"[^>]*>Edit</a>",
                     manager)
    assert re.search(rf"/settings/roles/{role(world, 'viewer').id}/edit\"[^>]*>View</a>", manager)
    assert f"/settings/roles/new?clone={role(world, 'viewer').id}" not in manager


# -- the matrix editor ---------------------------------------------------------------------


def test_matrix_round_trip(world: SimpleNamespace, login: Any) -> None:
    """What is saved shows up in the form again, and resubmitting it changes nothing."""
    client = login(world.users["owner"], world.ws)
    values = matrix_values(client, "/settings/roles/new")
    assert granted(values) == {}
    values.update({
        "name": "Closer", "description": "Closes deals",
        "parent_id": str(role(world, "viewer").id),
        "scope__leads__view": "own", "scope__leads__edit": "own",
        "scope__deals__view": "all", "cond__deals__view": CLOSED,
        "deny__leads__export": "y", "scope__members__view": "all",
        "field__deals__amount": "hidden", "field__leads__email": "readonly",
        "step": "save",
    })
    response = client.post("/settings/roles/new", data=values)
    assert response.status_code == 302, errors_in(response)
    closer = role_named("Closer")
    assert closer.parent_id == role(world, "viewer").id
    saved = grants_of(closer.id)
    assert saved == {
        ("leads", "view", "own", "allow", ""), ("leads", "edit", "own", "allow", ""),
        ("deals", "view", "all", "allow", str([{"field": "stage", "op": "in",
                                                 "value": ["won", "lost"]}])),
        ("leads", "export", "all", "deny", ""), ("members", "view", "all", "allow", ""),
    }
    assert {(r.resource, r.field, r.mode) for r in closer.field_rules} == {
        ("deals", "amount", "hidden"), ("leads", "email", "readonly")}

    edit_url = f"/settings/roles/{closer.id}/edit"
    again = matrix_values(client, edit_url)
    assert granted(again) == {"leads__view": "own", "leads__edit": "own", "deals__view": "all",
                              "members__view": "all"}
    assert again["deny__leads__export"] == "y"
    assert again["field__deals__amount"] == "hidden"
    # The condition comes back as builder rows, not as JSON text.
    assert (again["cond__deals__view__0__field"], again["cond__deals__view__0__op"]) == (
        "stage", "in")
    assert {v for k, v in again.items() if k.startswith("cond__deals__view__0__pick__")} == {
        "won", "lost"}
    assert again["cond__deals__view"] == ""
    assert again["parent_id"] == str(role(world, "viewer").id)
    before = policy_snapshot()
    assert client.post(edit_url, data={**again, "step": "save"}).status_code == 302
    after = policy_snapshot()
    assert grants_of(closer.id) == saved
    assert after["rbac_field_rule"] != [] and len(after["rbac_grant"]) == len(before["rbac_grant"])


def test_custom_actions_get_their_own_column(world: SimpleNamespace, login: Any,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    registry = Registry()
    for res in rbac.registry:
        registry.add(res)
    registry.add(Resource("forecasts", module="analytics", label="Forecasts", owner_column=None,
                          actions=(*STANDARD_ACTIONS, "run")))
    monkeypatch.setattr(rbac, "registry", registry)
    client = login(world.users["owner"], world.ws)
    values = matrix_values(client, "/settings/roles/new")
    assert values["scope__forecasts__run"] == "" and "cond__forecasts__run" not in values
    page = client.get("/settings/roles/new").text
    analytics = page.split('data-module="analytics"', 1)[1].split("</table>", 1)[0]
    assert '<th scope="col">run</th>' in analytics
    values.update({"name": "Analyst", "scope__forecasts__run": "all", "step": "save"})
    assert client.post("/settings/roles/new", data=values).status_code == 302
    assert grants_of(role_named("Analyst").id) == {("forecasts", "run", "all", "allow", "")}
    granting = client.get("/settings/roles/compare?permission=reports.run").text
    assert "Analyst" in granting


def test_shortcuts_fill_the_form_on_the_server_and_save_nothing(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'junior_rep').id}/edit"
    values = matrix_values(client, url)
    before = policy_snapshot()

    sales_view = form_values(client.post(url, data={**values, "shortcut": "sales:view"}).text)
    cells = granted(sales_view)
    assert cells["leads__view"] == cells["deals__view"] == "all"
    assert "leads__edit" not in cells and "leads__create" not in cells
    assert not any(k.startswith(("clients", "tasks", "members")) for k in cells)

    full = form_values(client.post(url, data={**values, "shortcut": "*:full"}).text)
    business = {f"{r.name}__{a}" for r in rbac.registry for a in r.actions
                if r.module != "administration"}
    assert set(granted(full)) == business and set(granted(full).values()) == {"all"}
    none = form_values(client.post(url, data={**full, "shortcut": "clients:none"}).text)
    assert not any(k.startswith(("clients", "notes")) for k in granted(none))
    assert any(k.startswith("leads") for k in granted(none))
    assert policy_snapshot() == before

    # Saving what the shortcut produced stores exactly those cells.
    response = client.post(url, data={**sales_view, "step": "save"})
    assert response.status_code == 302
    assert grants_of(role(world, "junior_rep").id) == {
        ("leads", "view", "all", "allow", ""), ("deals", "view", "all", "allow", ""),
        # the demo's reports and analytics belong to the Sales module too
        ("reports", "view", "all", "allow", ""), ("analytics", "view", "all", "allow", "")}


def test_preview_lists_gains_and_losses_and_writes_nothing(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'member').id}/edit"
    values = matrix_values(client, url)
    values.update({"scope__deals__delete": "", "scope__leads__export": "own",
                   "step": "preview"})
    before = policy_snapshot()
    response = client.post(url, data=values)
    assert response.status_code == 200
    preview = response.text.split('class="rbac-preview"', 1)[1].split("</section>", 1)[0]
    assert "Member2" in preview and "Member" in preview
    gains, losses = re.findall(r'<td class="rbac-gained">(.*?)</td>\s*<td class="rbac-lost">'
                               r'(.*?)</td>', preview, re.S)[0]
    assert "leads.export [own]" in gains and "deals.delete [own]" in losses
    assert 'name="step" value="save"' in response.text
    assert policy_snapshot() == before

    # The Save button re-submits the same form data.
    assert client.post(url, data={**values, "step": "save"}).status_code == 302
    cells = {(g[0], g[1]) for g in grants_of(role(world, "member").id)}
    assert ("leads", "export") in cells and ("deals", "delete") not in cells


def test_new_role_preview_lists_its_grants_and_writes_nothing(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["admin"], world.ws)
    values = matrix_values(client, "/settings/roles/new")
    values.update({"name": "Exporter", "scope__deals__export": "all",
                   "cond__deals__export": CLOSED, "scope__deals__view": "all",
                   "step": "preview"})
    before = policy_snapshot()
    response = client.post("/settings/roles/new", data=values)
    assert response.status_code == 200
    assert "<code>deals.export</code>" in response.text
    assert "stage in (won, lost)" in response.text
    assert policy_snapshot() == before
    assert role_named("Exporter") is None


UNREADABLE = "cannot be read or does not fit the fields"
BAD_CELLS = [
    ({"cond__deals__view": "[{not json"}, UNREADABLE),
    ({"cond__deals__view": '[{"field": "nope", "op": "eq", "value": 1}]'}, UNREADABLE),
    ({"cond__deals__view": '[{"field": "stage", "op": "like", "value": "w"}]'}, UNREADABLE),
    ({"scope__deals__view": "", "cond__deals__view": CLOSED}, "Choose a scope"),
    ({"scope__deals__view": "galaxy"}, "Not a valid choice"),
    ({"name": ""}, "This field is required"),
    ({"name": "Viewer"}, "already exists"),
    ({"field__deals__amount": "invisible"}, "Not a valid choice"),
]


def test_bad_input_is_shown_at_the_field_and_writes_nothing(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{role(world, 'finance').id}/edit"
    values = matrix_values(client, url)
    before = policy_snapshot()
    for change, message in BAD_CELLS:
        response = client.post(url, data={**values, **change, "step": "save"})
        assert response.status_code == 400, change
        assert message in errors_in(response), (change, errors_in(response))
        # At the field, not only on top of the page.
        assert 'class="rbac-field-errors"' in response.text, change
        assert policy_snapshot() == before, change


def test_a_role_admin_cannot_create_a_role_wider_than_themselves(
        world: SimpleNamespace, login: Any) -> None:
    give_role_admin(world, "manager")
    client = login(world.users["manager"], world.ws)
    values = matrix_values(client, "/settings/roles/new")
    before = policy_snapshot()
    wide = {**values, "name": "Wide", "scope__leads__view": "all", "step": "save"}
    response = client.post("/settings/roles/new", data=wide)
    assert response.status_code == 403
    assert "grants more than you hold" in errors_in(response)
    # The preview refuses as well, before anything is saved.
    assert client.post("/settings/roles/new", data={**wide, "step": "preview"}).status_code == 403
    assert policy_snapshot() == before
    narrow = {**values, "name": "Narrow", "scope__leads__view": "team", "step": "save"}
    assert client.post("/settings/roles/new", data=narrow).status_code == 302
    assert grants_of(role_named("Narrow").id) == {("leads", "view", "team", "allow", "")}


def test_members_without_role_rights_are_refused_and_nothing_changes(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["member"], world.ws)
    before = policy_snapshot()
    target = role(world, "junior_rep").id
    for url, data in [
        ("/settings/roles/new", {"name": "Mine", "scope__leads__view": "all", "step": "save"}),
        (f"/settings/roles/{target}/edit", {"name": "Renamed", "step": "save"}),
        (f"/settings/roles/{target}/delete", {}),
        (f"/settings/members/{world.members['member'].id}/roles", {"role_id": str(target)}),
        ("/settings/conflicts", {"role_a_id": "1", "role_b_id": "2"}),
        ("/settings/plan", {"plan": "free"}),
    ]:
        assert client.post(url, data=data).status_code == 403, url
    assert policy_snapshot() == before


def test_owner_and_admin_roles_cannot_be_edited(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    for key in ("owner", "admin"):
        url = f"/settings/roles/{role(world, key).id}/edit"
        response = client.get(url)
        assert response.status_code == 200
        assert "Built-in role: its permissions cannot be changed" in response.text
        before = policy_snapshot()
        refused = client.post(url, data={**form_values(response.text), "step": "save"})
        assert refused.status_code == 403
        assert "always has full access" in refused.text
        assert policy_snapshot() == before


def test_clone_starts_from_the_source_role(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    finance = role(world, "finance")
    values = matrix_values(client, f"/settings/roles/new?clone={finance.id}")
    assert values["name"] == "Finance (copy)"
    deals = {k: v for k, v in granted(values).items() if k.startswith("deals__")}
    assert deals == {"deals__view": "all", "deals__export": "all"}
    assert values["cond__deals__export__0__field"] == "stage"
    response = client.post(f"/settings/roles/new?clone={finance.id}",
                           data={**values, "step": "save"})
    assert response.status_code == 302
    assert grants_of(role_named("Finance (copy)").id) == grants_of(finance.id)
    owner = client.get(f"/settings/roles/new?clone={role(world, 'owner').id}")
    assert owner.status_code == 400 and "cannot be cloned" in owner.text


def test_delete_offers_to_move_members(world: SimpleNamespace, login: Any) -> None:
    m = rbac.models
    temp = m.Role(workspace=world.ws, name="Temp")
    workspaces.add_grant(rbac, temp, "leads", "view", "own")
    db.session.add(temp)
    only = m.MemberRole(membership=world.members["member2"], role=temp)
    db.session.add(only)
    db.session.flush()
    db.session.delete(db.session.scalar(sa.select(m.MemberRole).where(
        m.MemberRole.membership_id == world.members["member2"].id,
        m.MemberRole.role_id == role(world, "member").id)))
    db.session.commit()
    client = login(world.users["owner"], world.ws)
    url = f"/settings/roles/{temp.id}/delete"
    page = client.get(url).text
    assert "Member2" in page and "only this role" in page

    before = policy_snapshot()
    refused = client.post(url, data={"move_to": ""})
    assert refused.status_code == 409 and "hold only this role" in errors_in(refused)
    assert policy_snapshot() == before

    viewer = role(world, "viewer")
    assert client.post(url, data={"move_to": str(viewer.id)}).status_code == 302
    assert role_named("Temp") is None
    held = set(db.session.scalars(sa.select(m.MemberRole.role_id).where(
        m.MemberRole.membership_id == world.members["member2"].id)))
    assert held == {viewer.id}


# -- compare and "which roles grant X?" ----------------------------------------------------


def test_compare_highlights_differences_and_filters(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["admin"], world.ws)
    viewer, finance = role(world, "viewer"), role(world, "finance")
    response = client.get(f"/settings/roles/compare?ids={viewer.id}&ids={finance.id}"
                          "&filter=deals")
    assert response.status_code == 200
    rows = dict(re.findall(r'<tr class="([^"]*)">\s*<th scope="row"><code>([^<]+)</code>',
                           response.text)[i][::-1] for i in range(2))
    assert rows == {"deals.view": "rbac-differs", "deals.export": "rbac-differs"}
    assert "all where stage in (won, lost)" in response.text
    assert "leads.view" not in response.text.split("rbac-compare", 1)[1]

    same = client.get(f"/settings/roles/compare?ids={viewer.id}&ids={role(world, 'admin').id}"
                      "&filter=leads.view")
    assert same.status_code == 200 and 'class="rbac-differs"' not in same.text
    differ = client.get(f"/settings/roles/compare?ids={viewer.id}&ids={role(world, 'admin').id}"
                        "&filter=leads.edit")
    assert 'class="rbac-differs"' in differ.text
    one = client.get(f"/settings/roles/compare?ids={viewer.id}")
    assert one.status_code == 400 and "at least two roles" in one.text


def test_which_roles_grant_a_permission(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["admin"], world.ws)
    response = client.get("/settings/roles/compare?permission=deals.export")
    assert response.status_code == 200
    names = re.findall(r"<li>([^<]+?)(?: <span|</li>)",
                       response.text.split('class="rbac-list rbac-granting"', 1)[1])
    assert names == ["Owner", "Admin", "Manager", "Finance", "Sales"]
    bad = client.get("/settings/roles/compare?permission=rockets.launch")
    assert bad.status_code == 400 and "unknown resource" in bad.text


# -- members: access, assignments ----------------------------------------------------------


def test_member_access_shows_where_each_permission_comes_from(
        world: SimpleNamespace, login: Any) -> None:
    m = rbac.models
    base = m.Role(workspace=world.ws, name="Base")
    workspaces.add_grant(rbac, base, "clients", "export", "own")
    child = m.Role(workspace=world.ws, name="Child", parent=base)
    workspaces.add_grant(rbac, child, "leads", "export", "own")
    db.session.add_all([base, child])
    db.session.flush()
    starts = utcnow() + dt.timedelta(days=3)
    workspaces.assign_role(rbac, world.members["member2"], child)
    workspaces.assign_role(rbac, world.members["member2"], role(world, "viewer"),
                           starts_at=starts)
    db.session.commit()
    client = login(world.users["manager"], world.ws)  # Manager has members.view
    response = client.get(f"/settings/members/{world.members['member2'].id}/access")
    assert response.status_code == 200
    html = response.text
    assert "Child" in html and "Base" in html and "scheduled" in html
    assert starts.strftime("%Y-%m-%d %H:%M") in html
    assert "from Child" in html and "from Base (inherited)" in html
    assert "from Member" in html
    # The Manager may look but not change a member outside their team: no
    # assignment form, no remove buttons.
    assert "Give role" not in html and "Remove</button>" not in html


def test_temporary_assignment_and_removal(world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    viewer_id = world.members["viewer"].id
    url = f"/settings/members/{viewer_id}/roles"
    finance = role(world, "finance")
    until = (utcnow() + dt.timedelta(days=10)).replace(second=0, microsecond=0)

    before = policy_snapshot()
    past = client.post(url, data={"role_id": finance.id, "expires_at": "2001-01-01T10:00"})
    assert past.status_code == 400 and "in the past" in errors_in(past)
    reversed_window = client.post(url, data={"role_id": finance.id,
                                             "starts_at": until.strftime("%Y-%m-%dT%H:%M"),
                                             "expires_at": (until - dt.timedelta(days=1))
                                             .strftime("%Y-%m-%dT%H:%M")})
    assert reversed_window.status_code == 400
    assert "end after it starts" in errors_in(reversed_window)
    assert policy_snapshot() == before

    response = client.post(url, data={"role_id": finance.id,
                                      "expires_at": until.strftime("%Y-%m-%dT%H:%M")})
    assert response.status_code == 302
    m = rbac.models
    assignment = db.session.scalar(sa.select(m.MemberRole).where(
        m.MemberRole.membership_id == viewer_id, m.MemberRole.role_id == finance.id))
    assert assignment.expires_at == until  # the datetime-local value, read as UTC
    assert rbac.can("deals.export", access=rbac.access_for(viewer_id))
    page = client.get(f"/settings/members/{viewer_id}/access").text
    assert until.strftime("%Y-%m-%d %H:%M") + " UTC" in page

    remove = f"/settings/members/{viewer_id}/roles/{assignment.id}/remove"
    assert client.post(remove).status_code == 302
    assert not rbac.can("deals.export", access=rbac.access_for(viewer_id))
    # The last role stays.
    last = db.session.scalar(sa.select(m.MemberRole.id).where(
        m.MemberRole.membership_id == viewer_id))
    before = policy_snapshot()
    refused = client.post(f"/settings/members/{viewer_id}/roles/{last}/remove")
    assert refused.status_code == 409 and "at least one role" in errors_in(refused)
    assert policy_snapshot() == before


def test_assignment_rules_are_enforced_through_the_form(world: SimpleNamespace,
                                                        login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    before = policy_snapshot()
    owner_role = role(world, "owner").id
    response = admin.post(f"/settings/members/{world.members['viewer'].id}/roles",
                          data={"role_id": owner_role})
    assert response.status_code == 403 and "Only an Owner" in errors_in(response)
    own = admin.post(f"/settings/members/{world.members['admin'].id}/roles",
                     data={"role_id": role(world, "viewer").id})
    assert own.status_code == 403 and "your own roles" in errors_in(own)
    assert policy_snapshot() == before


# -- segregation of duties, plan -------------------------------------------------------------


def test_segregation_of_duties(world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    finance, junior = role(world, "finance"), role(world, "junior_rep")
    response = admin.post("/settings/conflicts",
                          data={"role_a_id": finance.id, "role_b_id": junior.id})
    assert response.status_code == 302
    page = admin.get("/settings/conflicts").text
    assert "Finance" in page and "Junior Rep" in page and "Remove</button>" in page
    same = admin.post("/settings/conflicts", data={"role_a_id": finance.id,
                                                    "role_b_id": finance.id})
    assert same.status_code == 400 and "conflict with itself" in errors_in(same)

    before = policy_snapshot()
    refused = admin.post(f"/settings/members/{world.members['finance'].id}/roles",
                         data={"role_id": junior.id})
    assert refused.status_code == 403 and "segregation of duties" in errors_in(refused)
    assert policy_snapshot() == before

    pair = db.session.scalar(sa.select(rbac.models.RoleConflict.id))
    viewer = login(world.users["manager"], world.ws)  # no roles rights at all
    assert viewer.post(f"/settings/conflicts/{pair}/remove").status_code == 403
    assert admin.post(f"/settings/conflicts/{pair}/remove").status_code == 302
    assert db.session.scalar(sa.select(sa.func.count(rbac.models.RoleConflict.id))) == 0


def test_plan_is_changed_by_the_owner_only_and_keeps_grants(
        world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    before = policy_snapshot()
    assert admin.get("/settings/plan").status_code == 200  # billing.view reads it
    assert admin.post("/settings/plan", data={"plan": "free"}).status_code == 403
    assert policy_snapshot() == before

    owner = login(world.users["owner"], world.ws)
    page = owner.get("/settings/plan").text
    assert "enterprise" in page and "✓ included" in page
    assert owner.post("/settings/plan", data={"plan": "galaxy"}).status_code == 400
    assert owner.post("/settings/plan", data={"plan": "free"}).status_code == 302
    after = policy_snapshot()
    assert after["rbac_grant"] == before["rbac_grant"]  # nothing deleted
    assert [row for row in after["rbac_workspace"] if row[0] == world.ws.id][0][3] == "free"
    assert not rbac.can("leads.view", access=rbac.access_for(world.members["viewer"]))
    assert owner.post("/settings/plan", data={"plan": "enterprise"}).status_code == 302
    assert rbac.can("leads.view", access=rbac.access_for(world.members["viewer"]))


# -- API tokens ------------------------------------------------------------------------------


def test_tokens_create_list_and_revoke(app: Flask, world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["junior_rep"], world.ws)
    response = client.post("/settings/tokens", data={"name": "Reporting"})
    assert response.status_code == 201
    plaintext = re.search(r'value="(crmrbac_[^"]+)"', response.text).group(1)
    T = rbac.models.ApiToken
    token = db.session.scalar(sa.select(T).where(T.name == "Reporting"))
    assert token.token_hash == tokens.hash_token(plaintext) and plaintext not in token.prefix
    listing = client.get("/settings/tokens").text
    assert plaintext not in listing and token.prefix in listing

    api = app.test_client()
    bearer = {"Authorization": f"Bearer {plaintext}"}
    own = world.members["junior_rep"].id
    assert api.get(f"/api/v1/members/{own}/access", headers=bearer).status_code == 200

    other = login(world.users["member"], world.ws)
    assert other.post(f"/settings/tokens/{token.id}/revoke").status_code == 404
    assert client.post(f"/settings/tokens/{token.id}/revoke").status_code == 302
    db.session.expire_all()
    assert db.session.get(T, token.id).revoked_at is not None
    assert api.get(f"/api/v1/members/{own}/access", headers=bearer).status_code == 401
    assert "revoked" in client.get("/settings/tokens").text
    bad = client.post("/settings/tokens", data={"name": ""})
    assert bad.status_code == 400
