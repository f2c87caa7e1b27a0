"""Privilege escalation through the real routes: every attempt refused, nothing written.

Each case is an HTTP request a member could forge (a settings form, a record
form, a JSON API call with a personal token) that would give them, or
someone they control, more than the rules allow. The expectation is always
the same: a 403, 404 or 400 and a database exactly as before, compared with
:func:`snapshot` (every row of every table but the append-only audit trail
and the per-request activity columns; the battery's shared
``snapshot_database`` of ``tests/security/conftest.py``).

Refusals write nothing, so one ``world`` serves a whole table of cases: the
snapshot taken before the table must still hold after every case, which
also proves the cases do not depend on each other. A case that fails is
collected and the test reports them all at the end, so one run shows every
hole at once.

The existing service-level tables (``tests/test_roles_rules.py``) and the API
escalation table (``tests/test_api.py``) are not repeated; these go through
the pages and forms, and through the cross-workspace and forged-field paths.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.test import TestResponse

from crm_app.extensions import db, mail
from crm_app.models import Deal, Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import tokens, workspaces
from tests.rbac_helpers import (
    custom_role,
    fast_passwords,  # noqa: F401  (autouse fixture)
)
from tests.security.conftest import Snapshot, snapshot_database, snapshot_diff
from tests.test_api import Api
from tests.test_settings_ui import give_role_admin, matrix_values, role

REFUSED = (400, 403, 404)


def snapshot() -> Snapshot:
    """Every stored row of every table but the audit trail (the battery's shared snapshot).

    :func:`tests.security.conftest.snapshot_database` leaves out the append-only
    audit trail (a refusal is *supposed* to add an ``access.denied`` event) and
    the activity stamps any request writes (``last_seen_at``, ``last_used_at``).
    """
    return snapshot_database()


def changed_tables(before: Snapshot, after: Snapshot) -> list[str]:
    """The rows that differ between two snapshots, as ``table: +/- row`` lines."""
    return snapshot_diff(before, after)


Case = tuple[str, Callable[[], TestResponse]]


def refused(response: TestResponse) -> bool:
    """Whether ``response`` refuses the request (the record forms' failed validation
    is a 400, as the settings pages' is)."""
    if response.status_code in REFUSED:
        return True
    # Signed nobody in: a token outside the API is anonymous.
    return response.status_code in (301, 302, 303) and "/login" in response.headers.get(
        "Location", "")


def run_refusals(cases: list[Case]) -> int:
    """Send each request; fail (listing every offender) unless all are refused and write nothing.

    Returns the number of cases run.
    """
    before = snapshot()
    problems = []
    for label, send in cases:
        response = send()
        after = snapshot()
        if not refused(response):
            problems.append(f"{label}: answered {response.status_code}, not a refusal")
        if response.status_code >= 500:
            problems.append(f"{label}: server error")
        if after != before:
            problems.append(f"{label}: changed {changed_tables(before, after)}")
            before = after  # report the next case against the new state
    assert not problems, "\n".join(problems)
    return len(cases)


@pytest.fixture
def beta(world: SimpleNamespace) -> SimpleNamespace:
    """Ids living in the *other* workspace (``world.ws2``), to forge into ``world.ws`` requests."""
    dept = rbac.models.Department(workspace=world.ws2, name="Beta dept")
    db.session.add(dept)
    db.session.commit()
    return SimpleNamespace(
        role=workspaces.role_by_key(rbac, world.ws2, "viewer").id,
        owner_role=workspaces.role_by_key(rbac, world.ws2, "owner").id,
        member=membership_id(world.ws2, world.users["outsider"]),
        owner_member=membership_id(world.ws2, world.users["dual"]),
        department=dept.id, client=world.other["client"].id, lead=world.other["lead"].id,
        ws=world.ws2.id)


def membership_id(workspace: Any, user: Any) -> int:
    M = rbac.models.Membership
    return int(db.session.scalar(sa.select(M.id).where(M.workspace_id == workspace.id,
                                                       M.user_id == user.id)))


def token_client(app: Flask, world: SimpleNamespace, key: str) -> Api:
    """A session-less API client carrying a fresh token of member ``key`` of ``world.ws``."""
    _, plaintext = tokens.create_token(rbac, world.members[key], f"escalation {key}")
    db.session.commit()
    return Api(app, plaintext)


def assignment_id(world: SimpleNamespace, member: str, role_key: str) -> int:
    return next(mr.id for mr in world.members[member].member_roles if mr.role.key == role_key)


# -- a member changing their own roles, an Admin making Owners -----------------------------


def test_nobody_edits_their_own_roles_through_the_pages(
        world: SimpleNamespace, login: Any) -> None:
    """Members, Admins and role admins (members.edit) try to change their own assignments."""
    give_role_admin(world, "manager")
    own = {k: world.members[k].id for k in ("member", "admin", "manager")}
    member, admin = login(world.users["member"], world.ws), login(world.users["admin"], world.ws)
    manager = login(world.users["manager"], world.ws)
    r = {k: role(world, k).id for k in ("owner", "admin", "manager", "viewer", "junior_rep")}
    cases: list[Case] = [
        ("member gives self Manager",
         lambda: member.post(f"/settings/members/{own['member']}/roles",
                             data={"role_id": r["manager"]})),
        ("member drops own Member role",
         lambda: member.post(f"/settings/members/{own['member']}/roles/"
                             f"{assignment_id(world, 'member', 'member')}/remove")),
        ("admin gives self Owner",
         lambda: admin.post(f"/settings/members/{own['admin']}/roles",
                            data={"role_id": r["owner"]})),
        ("admin gives self Viewer (own roles, even narrower)",
         lambda: admin.post(f"/settings/members/{own['admin']}/roles",
                            data={"role_id": r["viewer"]})),
        ("role admin gives self Junior Rep",
         lambda: manager.post(f"/settings/members/{own['manager']}/roles",
                              data={"role_id": r["junior_rep"]})),
        ("role admin removes own Manager role",
         lambda: manager.post(f"/settings/members/{own['manager']}/roles/"
                              f"{assignment_id(world, 'manager', 'manager')}/remove")),
        ("role admin widens own visibility",
         lambda: manager.post(f"/settings/members/{own['manager']}/department",
                              data={"department_id": world.departments["sales"].id,
                                    "visibility": "all"})),
        ("role admin widens own team",
         lambda: manager.post(f"/settings/members/{own['manager']}/team",
                              data={"member_id": world.members["member2"].id})),
        ("role admin reactivates/deactivates self",
         lambda: manager.post(f"/settings/members/{own['manager']}/deactivate")),
    ]
    run_refusals(cases)


def test_profile_form_ignores_forged_role_status_and_owner_fields(
        world: SimpleNamespace, login: Any) -> None:
    """The profile page saves name/password/notifications only, whatever else is posted."""
    client = login(world.users["member"], world.ws)
    before = snapshot()
    response = client.post("/settings/profile", data={
        "name": world.users["member"].name, "notify_email": "y",
        "roles": [role(world, "owner").id], "role_id": role(world, "owner").id,
        "status": "active", "is_owner": "1", "visibility": "all",
        "department_id": world.departments["support"].id, "workspace_id": world.ws2.id,
        "user_id": world.users["owner"].id, "email": "owner@example.test",
        "is_active_user": "1"})
    assert response.status_code in (*REFUSED, 302)
    assert snapshot() == before  # the same name and preference: nothing at all changed


def test_admin_never_makes_an_owner(world: SimpleNamespace, login: Any, app: Flask) -> None:
    """Owner (and Admin) are given and taken by Owners only: pages, API, invitations, panels."""
    admin = login(world.users["admin"], world.ws)
    api = token_client(app, world, "admin")
    viewer = world.members["viewer"].id
    owner_mr = assignment_id(world, "owner", "owner")
    r = {k: role(world, k).id for k in ("owner", "admin")}
    cases: list[Case] = [
        ("page: Owner to a Viewer",
         lambda: admin.post(f"/settings/members/{viewer}/roles", data={"role_id": r["owner"]})),
        ("page: Admin to a Viewer",
         lambda: admin.post(f"/settings/members/{viewer}/roles", data={"role_id": r["admin"]})),
        ("page: Owner taken from the Owner",
         lambda: admin.post(f"/settings/members/{world.members['owner'].id}/roles/"
                            f"{owner_mr}/remove")),
        ("page: edit the Owner role",
         lambda: admin.post(f"/settings/roles/{r['owner']}/edit",
                            data={"name": "Owner", "step": "save"})),
        ("page: custom role inheriting from Owner",
         lambda: admin.post("/settings/roles/new",
                            data={"name": "Heir", "parent_id": r["owner"], "step": "save"})),
        ("page: invite as Owner",
         lambda: admin.post("/settings/members/invite",
                            data={"email": "boss@example.test", "roles": [r["owner"]]})),
        ("page: deactivate the Owner",
         lambda: admin.post(f"/settings/members/{world.members['owner'].id}/deactivate")),
        ("api: Owner to self",
         lambda: api.post(f"/members/{world.members['admin'].id}/roles",
                          {"role_id": r["owner"]})),
        ("api: role inheriting from Owner",
         lambda: api.post("/roles", {"name": "Heir", "parent_id": r["owner"]})),
        ("api: Owner's assignment removed",
         lambda: api.delete(f"/members/{world.members['owner'].id}/roles/{owner_mr}")),
    ]
    run_refusals(cases)


def test_read_only_admin_panels_refuse_writes(world: SimpleNamespace, login: Any) -> None:
    """The Flask-Admin panels of roles and members are read-only, even to a forged POST."""
    admin = login(world.users["admin"], world.ws)
    ms = world.members["viewer"]
    before = snapshot()
    attempts = [
        ("/admin/rbac_admin_roles/new/", {"name": "Panel owner", "is_owner": "y",
                                          "builtin": "y", "key": "owner"}),
        (f"/admin/rbac_admin_roles/edit/?id={role(world, 'viewer').id}",
         {"name": "Viewer", "is_owner": "y"}),
        (f"/admin/rbac_admin_members/edit/?id={ms.id}", {"status": "active",
                                                          "visibility": ""}),
        ("/admin/rbac_admin_members/new/", {"status": "active"}),
        ("/admin/rbac_admin_roles/delete/", {"id": str(role(world, "finance").id)}),
        ("/admin/rbac_admin_members/delete/", {"id": str(world.members["owner"].id)}),
        ("/admin/rbac_admin_roles/action/", {"action": "delete",
                                             "rowid": [str(role(world, "finance").id)]}),
    ]
    problems = []
    for url, data in attempts:
        response = admin.post(url, data=data)
        # Flask-Admin answers a disabled view with a redirect to the list (302): acceptable
        # only because nothing may change, which the snapshot below checks.
        if response.status_code not in (*REFUSED, 302):
            problems.append(f"{url}: {response.status_code}")
    assert not problems, problems
    assert snapshot() == before


# -- a role admin creating or editing a role wider than their own -----------------------


def test_a_role_admin_never_writes_a_role_wider_than_their_own(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    """Wider scope, more actions, a dropped condition, a wider parent: pages and API.

    ``manager`` (Manager + role admin) holds CRM rights at ``team`` scope;
    ``finance`` (Finance + role admin) sees deals only where stage is won/lost.
    Each holds an editable narrow role that they may change within their rights.
    """
    give_role_admin(world, "manager")
    give_role_admin(world, "finance")
    team_role = custom_role(world, "Team leads", [("leads", "view", "team")])
    closed = custom_role(world, "Closed deals", [("deals", "view", "all")],
                         condition=[{"field": "stage", "op": "in", "value": ["won", "lost"]}])
    db.session.commit()
    mgr, fin = login(world.users["manager"], world.ws), login(world.users["finance"], world.ws)
    mgr_api, fin_api = token_client(app, world, "manager"), token_client(app, world, "finance")
    new_form = matrix_values(mgr, "/settings/roles/new")
    team_url = f"/settings/roles/{team_role.id}/edit"
    team_form = matrix_values(mgr, team_url)
    closed_url = f"/settings/roles/{closed.id}/edit"
    closed_form = matrix_values(fin, closed_url)
    viewer, admin = role(world, "viewer").id, role(world, "admin").id

    def save(client: FlaskClient, url: str, form: dict[str, str], **change: Any
             ) -> Callable[[], TestResponse]:
        return lambda: client.post(url, data={**form, **change, "step": "save"})

    cases: list[Case] = [
        # wider scope
        ("page new: leads.view all", save(mgr, "/settings/roles/new", new_form, name="W1",
                                          scope__leads__view="all")),
        ("page edit: team -> all", save(mgr, team_url, team_form, scope__leads__view="all")),
        ("page edit: team -> department",
         save(mgr, team_url, team_form, scope__leads__view="department")),
        ("api new: leads.view all",
         lambda: mgr_api.post("/roles", {"name": "W2", "permissions": ["leads.view"]})),
        ("api edit: team -> all",
         lambda: mgr_api.patch(f"/roles/{team_role.id}", {
             "permissions": [{"resource": "leads", "action": "view", "scope": "all"}]})),
        # more actions
        ("page edit: + leads.manage",
         save(mgr, team_url, team_form, scope__leads__manage="own")),
        ("page edit: + settings.manage", save(mgr, team_url, team_form,
                                              scope__settings__manage="all")),
        ("page edit: + leads.bulk",
         save(mgr, team_url, team_form, scope__leads__bulk="own")),
        ("api edit: + settings.view",
         lambda: mgr_api.patch(f"/roles/{team_role.id}", {
             "permissions": ["leads.view", "settings.view"], "scopes": {"leads": "team"}})),
        # dropping (or loosening) a condition
        # (the editor shows the condition as builder rows: a row whose field is
        # "—" is no condition, and "new" is the first of the stage's choices)
        ("page edit: condition dropped", save(fin, closed_url, closed_form,
                                              cond__deals__view__0__field="")),
        ("page edit: condition loosened to won|lost|new",
         save(fin, closed_url, closed_form, cond__deals__view__0__pick__0="new")),
        ("page edit: condition replaced by JSON won|lost|new",
         save(fin, closed_url, closed_form, cond__deals__view__0__field="",
              cond__deals__view='[{"field": "stage", "op": "in", '
                                '"value": ["won", "lost", "new"]}]')),
        ("page new: deals.view without condition",
         save(fin, "/settings/roles/new", matrix_values(fin, "/settings/roles/new"),
              name="W3", scope__deals__view="all")),
        ("api edit: condition dropped",
         lambda: fin_api.patch(f"/roles/{closed.id}", {"permissions": ["deals.view"]})),
        ("api new: condition replaced by another field",
         lambda: fin_api.post("/roles", {"name": "W4", "permissions": [
             {"resource": "deals", "action": "view",
              "condition": [{"field": "amount", "op": "gt", "value": 0}]}]})),
        # a parent wider than the actor
        ("page new: parent Viewer", save(mgr, "/settings/roles/new", new_form, name="W5",
                                         parent_id=str(viewer))),
        ("page edit: parent Admin", save(mgr, team_url, team_form, parent_id=str(admin))),
        ("api edit: parent Viewer",
         lambda: mgr_api.patch(f"/roles/{team_role.id}", {"parent_id": viewer})),
        ("api new: parent Admin",
         lambda: mgr_api.post("/roles", {"name": "W6", "parent_id": admin})),
        # clone of a wider role, and editing a role wider than the actor
        ("page clone: Viewer", lambda: mgr.post(f"/settings/roles/new?clone={viewer}", data={
            **matrix_values(mgr, f"/settings/roles/new?clone={viewer}"), "name": "W7",
            "step": "save"})),
        ("api clone: Viewer", lambda: mgr_api.post(f"/roles/{viewer}/clone", {"name": "W8"})),
        ("page edit: rename Viewer (wider than me)",
         lambda: mgr.post(f"/settings/roles/{viewer}/edit",
                          data={"name": "Viewer", "description": "mine now", "step": "save"})),
        ("page delete: Viewer (wider than me)",
         lambda: mgr.post(f"/settings/roles/{viewer}/delete", data={"move_to": ""})),
    ]
    run_refusals(cases)
    # ... while the same actors may still narrow what they hold.
    ok = mgr.post(team_url, data={**team_form, "scope__leads__view": "own", "step": "save"})
    assert ok.status_code == 302


# -- forged fields ---------------------------------------------------------------------------


def test_settings_forms_refuse_ids_of_another_workspace(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any, app: Flask) -> None:
    """Role, member, department and record ids of workspace 2 forged into workspace 1 forms."""
    owner = login(world.users["owner"], world.ws)
    api = token_client(app, world, "owner")
    viewer = world.members["viewer"].id
    mgr = world.members["manager"].id
    finance = role(world, "finance").id
    new_form = matrix_values(owner, "/settings/roles/new")
    cases: list[Case] = [
        ("assign a ws2 role",
         lambda: owner.post(f"/settings/members/{viewer}/roles", data={"role_id": beta.role})),
        ("assign to a ws2 member",
         lambda: owner.post(f"/settings/members/{beta.member}/roles",
                            data={"role_id": role(world, "viewer").id})),
        ("remove a ws2 Owner assignment",
         lambda: owner.post(f"/settings/members/{beta.owner_member}/roles/1/remove")),
        ("deactivate a ws2 member",
         lambda: owner.post(f"/settings/members/{beta.owner_member}/deactivate")),
        ("move into a ws2 department",
         lambda: owner.post(f"/settings/members/{viewer}/department",
                            data={"department_id": beta.department})),
        ("add a ws2 member to a team",
         lambda: owner.post(f"/settings/members/{mgr}/team", data={"member_id": beta.member})),
        ("invite with a ws2 role",
         lambda: owner.post("/settings/members/invite",
                            data={"email": "x@example.test", "roles": [beta.role]})),
        ("new role with a ws2 parent",
         lambda: owner.post("/settings/roles/new", data={**new_form, "name": "P",
                                                          "parent_id": beta.role,
                                                          "step": "save"})),
        ("edit a ws2 role",
         lambda: owner.post(f"/settings/roles/{beta.role}/edit",
                            data={"name": "Hijacked", "step": "save"})),
        ("delete a ws2 role",
         lambda: owner.post(f"/settings/roles/{beta.role}/delete", data={})),
        ("delete moving holders to a ws2 role",
         lambda: owner.post(f"/settings/roles/{finance}/delete",
                            data={"move_to": beta.role})),
        ("conflict with a ws2 role",
         lambda: owner.post("/settings/conflicts",
                            data={"role_a_id": finance, "role_b_id": beta.role})),
        ("reassign to a ws2 user",
         lambda: owner.post(f"/settings/members/{world.members['member'].id}/reassign",
                            data={"to_user_id": world.users["outsider"].id, "step": "apply"})),
        ("api: assign a ws2 role",
         lambda: api.post(f"/members/{viewer}/roles", {"role_id": beta.role})),
        ("api: parent from ws2",
         lambda: api.post("/roles", {"name": "P2", "parent_id": beta.role})),
        ("api: patch a ws2 role",
         lambda: api.patch(f"/roles/{beta.role}", {"name": "Hijacked"})),
        ("api: delete moving to a ws2 role",
         lambda: api.delete(f"/roles/{finance}?move_to={beta.role}")),
        ("api: a ws2 member's roles",
         lambda: api.post(f"/members/{beta.member}/roles",
                          {"role_id": role(world, "viewer").id})),
    ]
    run_refusals(cases)


def test_role_forms_ignore_or_refuse_forged_identity_fields(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    """workspace_id, is_owner, builtin, key posted with a role: refused (API) or ignored (page)."""
    owner = login(world.users["owner"], world.ws)
    api = token_client(app, world, "owner")
    forged = {"workspace_id": world.ws2.id, "is_owner": True, "builtin": True, "key": "owner",
              "id": role(world, "owner").id, "member_count": 0}
    run_refusals([
        (f"api create with {key}", lambda k=key, v=value: api.post("/roles", {
            "name": f"Forged {k}", k: v}))  # type: ignore[misc]
        for key, value in forged.items()
    ] + [
        (f"api patch with {key}", lambda k=key, v=value: api.patch(  # type: ignore[misc]
            f"/roles/{role(world, 'junior_rep').id}", {k: v}))
        for key, value in forged.items()
    ])
    # The page form has no such fields: a forged one is ignored, and the role is an
    # ordinary custom role of the actor's own workspace.
    values = matrix_values(owner, "/settings/roles/new")
    response = owner.post("/settings/roles/new", data={
        **values, "name": "Plain", "scope__leads__view": "own", "step": "save",
        **{k: str(v) for k, v in forged.items()}, "is_owner": "y", "builtin": "y"})
    assert response.status_code == 302
    R = rbac.models.Role
    db.session.expire_all()
    plain = db.session.scalar(sa.select(R).where(R.name == "Plain"))
    assert (plain.workspace_id, plain.is_owner, plain.builtin) == (world.ws.id, False, False)
    assert plain.key != "owner"


def test_record_forms_ignore_forged_owner_and_workspace(
        world: SimpleNamespace, beta: SimpleNamespace, login: Any) -> None:
    """A member posting owner_id/workspace_id/client_id they may not set.

    Members without ``manage`` have no owner field: the forged value is dropped
    and the record stays theirs, in their workspace. A select with choices
    (owner for an Admin, client on a deal) refuses ids outside its choices.
    """
    member = login(world.users["member"], world.ws)
    m2 = world.users["member2"].id
    response = member.post("/leads/new", data={
        "name": "Forged lead", "status": "new", "owner_id": m2, "workspace_id": beta.ws,
        "id": world.leads["member2"].id, "created_at": "2000-01-01"})
    assert response.status_code == 302
    with rbac.system():
        made = db.session.scalar(sa.select(Lead).where(Lead.name == "Forged lead"))
        assert (made.owner_id, made.workspace_id) == (world.users["member"].id, world.ws.id)
        assert made.id != world.leads["member2"].id

    lead = world.leads["member"]
    before = snapshot()
    response = member.post(f"/leads/{lead.id}/edit", data={
        "name": lead.name, "status": lead.status, "source": lead.source or "",
        "company": lead.company or "", "email": lead.email or "",
        "owner_id": m2, "workspace_id": beta.ws})
    assert response.status_code in (*REFUSED, 302)
    assert snapshot() == before  # same visible values: no change, owner and workspace kept

    admin = login(world.users["admin"], world.ws)
    deal = world.deals["member-new"]
    base = {"title": deal.title, "stage": deal.stage, "amount": str(deal.amount)}
    run_refusals([
        ("admin gives a lead to a non-member",
         lambda: admin.post(f"/leads/{lead.id}/edit", data={
             "name": lead.name, "status": "new", "owner_id": world.users["outsider"].id})),
        ("admin creates a lead owned by a non-member",
         lambda: admin.post("/leads/new", data={"name": "X", "status": "new",
                                                  "owner_id": world.users["outsider"].id})),
        ("member links a deal to a ws2 client",
         lambda: member.post(f"/deals/{deal.id}/edit", data={**base, "client_id": beta.client})),
        ("member creates a deal on a ws2 client",
         lambda: member.post("/deals/new", data={"title": "Y", "stage": "new", "amount": "1",
                                                 "client_id": beta.client})),
        ("member edits a ws2 lead",
         lambda: member.post(f"/leads/{beta.lead}/edit", data={"name": "Hijacked",
                                                               "status": "new"})),
        ("member deletes a ws2 lead", lambda: member.post(f"/leads/{beta.lead}/delete")),
        ("member bulk-deletes ws2 and other members' leads",
         lambda: member.post("/leads/bulk-delete", data={
             "ids": [beta.lead, world.leads["member2"].id]})),
    ])
    with rbac.system():
        assert db.session.scalar(sa.select(Deal.client_id).where(Deal.id == deal.id)) \
            == deal.client_id


# -- API tokens beyond their member's rights -----------------------------------------------


def test_a_token_never_exceeds_its_member(world: SimpleNamespace, beta: SimpleNamespace,
                                          app: Flask, login: Any) -> None:
    """A Viewer's token writing; a token of workspace 1 aimed at workspace 2's data.

    ``dual`` is a Viewer in ws and the Owner of ws2: their ws token must act as
    that Viewer only, whatever session or workspace hint comes with it.
    """
    viewer = token_client(app, world, "viewer")
    dual = token_client(app, world, "dual")
    outsider_ms = db.session.get(rbac.models.Membership, beta.member)
    outsider_token = tokens.create_token(rbac, outsider_ms, "outsider")[1]
    db.session.commit()
    outsider = Api(app, outsider_token)
    # A browser session pinned to ws2 (where dual is Owner) plus dual's ws token.
    mixed = login(world.users["dual"], world.ws2)
    bearer = {"Authorization": dual.headers["Authorization"]}
    finance = role(world, "finance").id
    lead = world.leads["member"].id
    cases: list[Case] = [
        ("viewer token: create role", lambda: viewer.post("/roles", {"name": "V"})),
        ("viewer token: patch role",
         lambda: viewer.patch(f"/roles/{finance}", {"description": "x"})),
        ("viewer token: delete role", lambda: viewer.delete(f"/roles/{finance}")),
        ("viewer token: assign", lambda: viewer.post(
            f"/members/{world.members['viewer'].id}/roles", {"role_id": finance})),
        ("viewer token: CRM create",
         lambda: viewer.client.post("/leads/new", headers=viewer.headers,
                                    data={"name": "T", "status": "new"})),
        ("viewer token: CRM edit",
         lambda: viewer.client.post(f"/leads/{lead}/edit", headers=viewer.headers,
                                    data={"name": "T", "status": "new"})),
        ("viewer token: CRM delete",
         lambda: viewer.client.post(f"/leads/{lead}/delete", headers=viewer.headers)),
        ("viewer token: settings page write",
         lambda: viewer.client.post("/settings/roles/new", headers=viewer.headers,
                                    data={"name": "T", "step": "save"})),
        ("viewer token: settings deactivate",
         lambda: viewer.client.post(f"/settings/members/{world.members['member'].id}"
                                    "/deactivate", headers=viewer.headers)),
        ("ws token: ws2 record", lambda: dual.get(f"/records/clients/{beta.client}")),
        ("ws token: ws2 role", lambda: dual.patch(f"/roles/{beta.role}", {"name": "Z"})),
        ("ws token: ws2 member", lambda: dual.post(f"/members/{beta.member}/roles",
                                                   {"role_id": beta.role})),
        ("ws token: ws2 member access", lambda: dual.get(f"/members/{beta.member}/access")),
        ("ws token + ws2 session: roles", lambda: mixed.get("/api/v1/roles", headers=bearer)),
        ("ws token + ws2 session: create role",
         lambda: mixed.post("/api/v1/roles", json={"name": "Via mix"}, headers=bearer)),
        ("ws token + ws2 session: ws2 role",
         lambda: mixed.patch(f"/api/v1/roles/{beta.role}", json={"name": "Z"},
                             headers=bearer)),
        ("ws2 token: ws record", lambda: outsider.get(f"/records/leads/{lead}")),
        ("ws2 token: ws roles", lambda: outsider.patch(f"/roles/{finance}", {"name": "Z"})),
        ("ws2 token: ws member", lambda: outsider.get(
            f"/members/{world.members['owner'].id}/access")),
    ]
    run_refusals(cases)
    body = dual.get(f"/members/{world.members['dual'].id}/access").json
    assert body["is_owner"] is False and body["roles"] == ["Viewer"]


# -- invitations ------------------------------------------------------------------------------


def test_nobody_invites_with_a_role_wider_than_their_own(
        world: SimpleNamespace, login: Any) -> None:
    """Role admins inviting with roles beyond their own: no member, no user, no mail.

    A mixed list (one allowed role, one wider) is refused as a whole.
    """
    give_role_admin(world, "manager")
    give_role_admin(world, "junior_rep")
    mgr = login(world.users["manager"], world.ws)
    junior = login(world.users["junior_rep"], world.ws)
    r = {k: role(world, k).id for k in ("viewer", "finance", "manager", "junior_rep",
                                        "member", "admin")}

    def invite(client: FlaskClient, email: str, *keys: str) -> Callable[[], TestResponse]:
        return lambda: client.post("/settings/members/invite", data={
            "email": email, "roles": [r[k] for k in keys]})

    cases: list[Case] = [
        ("manager+: Viewer (all scope)", invite(mgr, "a@example.test", "viewer")),
        ("manager+: Finance (deals all)", invite(mgr, "b@example.test", "finance")),
        ("manager+: Admin", invite(mgr, "c@example.test", "admin")),
        ("manager+: Junior Rep + Viewer", invite(mgr, "d@example.test", "junior_rep", "viewer")),
        ("junior+: Member (more resources)", invite(junior, "e@example.test", "member")),
        ("junior+: Manager", invite(junior, "f@example.test", "manager")),
        ("junior+: existing user, wider role",
         invite(junior, "outsider@example.test", "viewer")),
    ]
    with mail.record_messages() as outbox:
        run_refusals(cases)
    assert outbox == []
    assert db.session.scalar(sa.select(User.id).where(User.email == "a@example.test")) is None


def test_nobody_gives_a_field_rule_looser_than_their_own(
        world: SimpleNamespace, login: Any, app: Flask) -> None:
    """A field hidden from the actor stays hidden, and a read-only one read-only, in every
    role they shape or give: editing, creating, cloning, giving to a member or a department.

    Between stacked roles the most permissive field rule wins, so a role without the
    actor's restriction would show its holders, the actor included, what the actor
    may not see. ``manager`` (role admin) sees leads with the email hidden and the
    company read-only, through the Manager role and a custom role "Team leads".
    """
    from crm_rbac_plugin.roles import field_rules as fr

    give_role_admin(world, "manager")
    fr.set_field_rules(rbac, role(world, "manager"),
                       {"leads": {"email": "hidden", "company": "readonly"}})
    team = custom_role(world, "Team leads", [("leads", "view", "team")])
    fr.set_field_rules(rbac, team, {"leads": {"email": "hidden", "company": "readonly"}})
    workspaces.assign_role(rbac, world.members["manager"], team)
    shown = custom_role(world, "Leads shown", [("leads", "view", "team")])
    db.session.commit()
    access = rbac.access_for(world.members["manager"])
    assert access.hidden("leads") == {"email"}
    assert access.unwritable("leads") == {"email", "company"}
    mgr, api = login(world.users["manager"], world.ws), token_client(app, world, "manager")
    team_url = f"/settings/roles/{team.id}/edit"
    team_form = matrix_values(mgr, team_url)
    new_form = matrix_values(mgr, "/settings/roles/new")
    sales = world.members["manager"].department
    support = world.members["viewer"].department

    def save(url: str, form: dict[str, str], **change: Any) -> Callable[[], TestResponse]:
        return lambda: mgr.post(url, data={**form, **change, "step": "save"})

    cases: list[Case] = [
        ("page edit: email shown", save(team_url, team_form, field__leads__email="")),
        ("page edit: email read-only", save(team_url, team_form,
                                            field__leads__email="readonly")),
        ("page edit: company writable", save(team_url, team_form, field__leads__company="")),
        ("page new: leads without field rules", save(
            "/settings/roles/new", new_form, name="F1", scope__leads__view="team")),
        ("api edit: field rules dropped",
         lambda: api.patch(f"/roles/{team.id}", {"field_rules": {}})),
        ("api new: leads without field rules", lambda: api.post("/roles", {
            "name": "F2", "permissions": [{"resource": "leads", "action": "view",
                                           "scope": "team"}]})),
        ("api clone: Leads shown", lambda: api.post(f"/roles/{shown.id}/clone", {"name": "F3"})),
        ("page give: Leads shown to member", lambda: mgr.post(
            f"/settings/members/{world.members['member'].id}/roles",
            data={"role_id": str(shown.id)})),
        ("api give: Leads shown to member", lambda: api.post(
            f"/members/{world.members['member'].id}/roles", {"role_id": shown.id})),
        ("api give: Leads shown to Support", lambda: api.post(
            f"/departments/{support.id}/roles", {"role_id": shown.id})),
        # Their own department: a role given to it is given to them.
        ("api give: Team leads to my own department", lambda: api.post(
            f"/departments/{sales.id}/roles", {"role_id": team.id})),
    ]
    run_refusals(cases)
    narrow = api.post("/roles", {"name": "Narrow", "permissions": [
        {"resource": "leads", "action": "view", "scope": "team"}],
        "field_rules": {"leads": {"email": "hidden", "company": "readonly"}}})
    assert narrow.status_code == 201, narrow.json
    refusal = api.patch(f"/roles/{narrow.json['id']}", {"field_rules": {}})
    assert refusal.status_code == 403
    assert "email of leads is hidden from you" in refusal.json["message"]
    # Within their own restrictions they still shape and give roles.
    ok = api.post("/roles", {"name": "F4", "permissions": [
        {"resource": "leads", "action": "view", "scope": "team"}],
        "field_rules": {"leads": {"email": "hidden", "company": "hidden"}}})
    assert ok.status_code == 201, ok.json
    given = api.post(f"/members/{world.members['member'].id}/roles", {"role_id": ok.json["id"]})
    assert given.status_code == 201, given.json
