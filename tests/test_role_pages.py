"""The role pages at a glance: the role list's summaries and holder links, the
role × resource overview, deleting a role with its counts, and scopes in words
on a member's access page and the explain page.

Each test reads the pages as a browser would (fresh requests through the
test client) and checks what they say, not only their status.
"""

from __future__ import annotations

import re
from html import unescape
from types import SimpleNamespace
from typing import Any

import pytest
from flask import Flask

from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import queries, workspaces
from crm_rbac_plugin.oversight.explain import explain
from tests.rbac_helpers import fast_passwords  # noqa: F401  (autouse fixture)
from tests.test_settings_ui import policy_snapshot, role, role_named


def row_of(html: str, name: str) -> str:
    """The ``<tr>`` of the table row headed ``name``."""
    match = re.search(rf'<th scope="row">{re.escape(name)}\b.*?</tr>', html, re.S)
    assert match is not None, f"no row {name!r}"
    return match.group(0)


def text(html: str) -> str:
    return unescape(re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", html))).strip()


def overview_cells(html: str, role_name: str) -> dict[str, tuple[str, str]]:
    """``{resource: (classes, text)}`` of one role's row of the overview."""
    row = row_of(html, role_name)
    cells = re.findall(r'<td class="([^"]*)" data-resource="([^"]+)">(.*?)</td>', row, re.S)
    return {resource: (classes, text(body)) for classes, resource, body in cells}


def roles_only(world: SimpleNamespace, who: str) -> None:
    """Give ``who`` a role that may see roles and nothing about members."""
    r = rbac.models.Role(workspace=world.ws, name=f"Roles reader {who}")
    workspaces.add_grant(rbac, r, "roles", "view", "all")
    workspaces.assign_role(rbac, world.members[who], r)
    db.session.commit()


# -- the role list ---------------------------------------------------------------------------


def test_role_list_summarises_each_role_and_links_its_holders(
        world: SimpleNamespace, login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    html = client.get("/settings/roles").text
    summaries = {name: text(re.search(r'class="rbac-role-summary">(.*?)</td>',
                                      row_of(html, name), re.S).group(1))
                 for name in ("Owner", "Junior Rep", "Finance", "Client Success", "Manager")}
    assert summaries["Owner"] == "Everything the plan includes · all records"
    assert summaries["Junior Rep"] == "Leads · own records"
    assert summaries["Finance"] == "Deals, Reports, Analytics, Invoices · all records"
    assert summaries["Client Success"] == "Clients, Notes, Tasks · all records"
    assert summaries["Manager"] == "Leads, Deals, Reports and 7 more · all records"

    junior = role(world, "junior_rep")
    link = re.search(r'<a class="rbac-holders" href="([^"]+)"[^>]*>(\d+)</a>',
                     row_of(html, "Junior Rep"))
    assert link is not None and link.groups() == (f"/settings/members?role={junior.id}", "1")
    holders = client.get(link.group(1)).text
    assert 'data-member="junior_rep@example.test"' in holders
    assert 'data-member="member2@example.test"' not in holders


def test_holder_count_is_plain_text_without_members_view(
        world: SimpleNamespace, login: Any) -> None:
    roles_only(world, "viewer")
    html = login(world.users["viewer"], world.ws).get("/settings/roles").text
    row = row_of(html, "Junior Rep")
    assert "/settings/members?role=" not in html
    assert re.search(r'<td class="rbac-num">\s*1\s*</td>', row)
    # Without roles.edit the editor answers 403: no Edit nor View link, no Clone nor Delete.
    for label in (">Edit</a>", ">View</a>", ">Clone</a>", "Delete</button>"):
        assert label not in html


# -- the overview ----------------------------------------------------------------------------


def test_overview_shows_the_widest_view_scope_per_role_and_resource(
        world: SimpleNamespace, login: Any) -> None:
    blocked = rbac.models.Role(workspace=world.ws, name="Blocked", parent=role(world, "viewer"))
    workspaces.add_grant(rbac, blocked, "deals", "view", "all", effect="deny")
    db.session.add(blocked)
    db.session.commit()
    client = login(world.users["admin"], world.ws)
    response = client.get("/settings/roles/overview")
    assert response.status_code == 200
    html = response.text
    assert 'aria-current="page">Overview' in html  # its own tab, highlighted

    junior = overview_cells(html, "Junior Rep")
    assert junior["leads"] == ("rbac-heat rbac-heat-1", "own")
    assert junior["deals"] == ("rbac-heat rbac-heat-0", "none")
    finance = overview_cells(html, "Finance")
    assert finance["deals"] == ("rbac-heat rbac-heat-4", "all where stage in (won, lost)")
    manager = overview_cells(html, "Manager")
    assert manager["leads"][1] == "team" and manager["members"][1] == "all"
    assert set(overview_cells(html, "Owner").values()) == {("rbac-heat rbac-heat-4", "all")}
    # An inherited allow and the role's own deny: the scope and the deny mark, in words.
    cells = overview_cells(html, "Blocked")
    assert cells["deals"] == ("rbac-heat rbac-heat-4 is-denied", "all ⊘ deny")
    assert cells["leads"] == ("rbac-heat rbac-heat-4", "all")
    legend = text(html.split('class="rbac-heat-legend"', 1)[1].split("</ul>", 1)[0])
    assert "none no access" in legend and "own own records" in legend and "deny" in legend
    assert 'class="rbac-table-wrap"' in html.split("rbac-heatmap", 1)[0]


@pytest.mark.parametrize("who", ["member", "manager"])
def test_overview_is_refused_without_roles_view(world: SimpleNamespace, login: Any,
                                                who: str) -> None:
    client = login(world.users[who], world.ws)
    assert client.get("/settings/roles/overview").status_code == 403
    assert "/settings/roles/overview" not in client.get("/settings/tokens").text


def test_overview_is_open_to_roles_view_alone(world: SimpleNamespace, login: Any) -> None:
    roles_only(world, "member")
    client = login(world.users["member"], world.ws)
    assert client.get("/settings/roles/overview").status_code == 200


# -- deleting a role ---------------------------------------------------------------------------


def test_delete_asks_with_holder_and_inheriting_counts(world: SimpleNamespace,
                                                       login: Any) -> None:
    junior = role(world, "junior_rep")
    junior_id = junior.id
    child = rbac.models.Role(workspace=world.ws, name="Junior Plus", parent=junior)
    db.session.add(child)
    db.session.commit()
    question = ("Delete Junior Rep? 1 member holds it and loses its permissions; "
                "1 role inherits from it.")
    client = login(world.users["owner"], world.ws)
    listing = client.get("/settings/roles").text
    form = re.search(rf'<form method="post" action="/settings/roles/{junior.id}/delete"'
                     r'[^>]*data-rbac-confirm="([^"]+)"', listing)
    assert form is not None and unescape(form.group(1)) == question
    viewer_row = row_of(listing, "Viewer")
    assert "Delete Viewer? 2 members hold it and lose its permissions; no role inherits" \
        in unescape(viewer_row)

    page = client.get(f"/settings/roles/{junior.id}/delete").text
    assert unescape(re.search(r'data-rbac-confirm="([^"]+)"', page).group(1)) == question
    assert "1 member holds it and loses its permissions; 1 role inherits from it." in page

    # The holder keeps another role, so the list's one-click form deletes it.
    workspaces.assign_role(rbac, world.members["junior_rep"], role(world, "viewer"))
    db.session.commit()
    response = client.post(f"/settings/roles/{junior_id}/delete", data={"move_to": ""})
    assert response.status_code == 302
    db.session.expire_all()
    assert db.session.get(rbac.models.Role, junior_id) is None
    assert role_named("Junior Plus").parent_id is None


def test_delete_is_still_refused_where_it_was(world: SimpleNamespace, login: Any) -> None:
    junior = role(world, "junior_rep")
    before = policy_snapshot()
    member = login(world.users["member"], world.ws)  # no roles rights
    assert member.post(f"/settings/roles/{junior.id}/delete",
                       data={"move_to": ""}).status_code == 403
    owner = login(world.users["owner"], world.ws)
    # The only role in force of its holder: refused with the move-to choice shown.
    stranded = owner.post(f"/settings/roles/{junior.id}/delete", data={"move_to": ""})
    assert stranded.status_code == 409 and 'name="move_to"' in stranded.text
    assert "hold only this role" in stranded.text
    admin_role = role(world, "admin")
    refused = owner.post(f"/settings/roles/{admin_role.id}/delete", data={"move_to": ""})
    assert refused.status_code == 403
    assert policy_snapshot() == before


# -- scopes in words -------------------------------------------------------------------------


def effective_cell(html: str, resource_label: str, column: int) -> str:
    row = row_of(html, resource_label)
    return text(re.findall(r'<td class="rbac-cell[^"]*"[^>]*>(.*?)</td>', row, re.S)[column])


@pytest.mark.parametrize("unowned_visible", [True, False])
def test_own_scope_reads_with_unassigned_records_when_they_are_visible(
        app: Flask, world: SimpleNamespace, login: Any, unowned_visible: bool) -> None:
    app.config["RBAC_UNOWNED_VISIBLE"] = unowned_visible
    own_view = "own records and unassigned ones" if unowned_visible else "own records"
    assert queries.scope_label("own") == own_view
    assert queries.scope_label("own", "edit") == "own records"
    # Every view scope narrower than "all" reaches unassigned records (policy rule 5).
    assert queries.scope_label("team") == ("their team's records and unassigned ones"
                                           if unowned_visible else "their team's records")
    assert queries.scope_label("all") == "all records"

    admin = login(world.users["admin"], world.ws)
    page = admin.get(f"/settings/members/{world.members['junior_rep'].id}/access").text
    leads = row_of(page, "Leads")
    assert leads.count("<td") == 8  # view, create, edit, delete, export, manage, bulk, import
    assert effective_cell(page, "Leads", 0) == f"{own_view} from Junior Rep"
    assert effective_cell(page, "Leads", 2) == "own records from Junior Rep"

    member = world.members["junior_rep"].id
    url = f"/settings/explain?member={member}&action=view&resource=leads&record="
    explained = text(admin.get(url).text.split('aria-label="Decision"', 1)[1])
    assert f"Scope {own_view} Plan" in explained
    edit = text(admin.get(url.replace("action=view", "action=edit")).text
                .split('aria-label="Decision"', 1)[1])
    assert "Scope own records Plan" in edit


def test_explain_says_an_unassigned_record_is_reached_through_own(
        world: SimpleNamespace, login: Any) -> None:
    admin = login(world.users["admin"], world.ws)
    lead = world.leads["unowned"]
    url = (f"/settings/explain?member={world.members['junior_rep'].id}&action=view"
           f"&resource=leads&record={lead.id}")
    explained = text(admin.get(url).text.split('aria-label="Decision"', 1)[1])
    assert "ALLOWED" in explained and "Scope own records and unassigned ones" in explained
    denied = text(admin.get(url.replace("action=view", "action=delete")).text
                  .split('aria-label="Decision"', 1)[1])
    assert "DENIED" in denied and "Scope" not in denied


def test_explain_lines_name_the_deciding_scope(app: Flask, world: SimpleNamespace) -> None:
    """``flask rbac explain`` prints the same scope line as the page."""
    junior = rbac.access_for(world.members["junior_rep"])
    assert "  scope: own records and unassigned ones" in explain(
        rbac, junior, "view", "leads").lines()
    manager = rbac.access_for(world.members["manager"])
    assert "  scope: their team's records" in explain(rbac, manager, "edit", "deals").lines()
    owner = rbac.access_for(world.members["owner"])
    assert "  scope: all records" in explain(rbac, owner, "delete", "deals").lines()
    refused = explain(rbac, junior, "delete", "leads").lines()
    assert not any(line.startswith("  scope:") for line in refused)


def test_scope_label_is_a_template_filter_and_global(app: Flask) -> None:
    env = app.jinja_env
    assert env.from_string("{{ 'all' | scope_label }}").render() == "all records"
    assert env.from_string("{{ scope_label('own', 'edit') }}").render() == "own records"


def test_overview_marks_the_modules_the_plan_leaves_out(world: SimpleNamespace,
                                                        login: Any) -> None:
    client = login(world.users["owner"], world.ws)
    assert "not in plan" not in client.get("/settings/roles/overview").text
    with rbac.system():
        world.ws.plan = "free"
        db.session.commit()
    html = client.get("/settings/roles/overview").text
    marked = re.findall(r'class="rbac-heat-module">(\w+) <span[^>]*>not in plan</span>', html)
    assert marked == ["Sales", "Accounting", "Marketing"]
