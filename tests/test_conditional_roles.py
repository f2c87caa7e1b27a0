"""Conditional roles: weekdays, a time-of-day window and networks on a role or an assignment.

Outside its condition a role grants nothing (``can()`` and the query filter
alike); the cached Access expires by itself at the window's next boundary
(controlled clock: ``identity.utcnow`` is patched, the policy version never
moves) and is rebuilt for a request from the other side of a network list;
``explain`` names the condition. Bad input is a 400 naming the field, with
nothing changed, through the API, the pages and the CLI. Every database test
runs on SQLite and PostgreSQL (the ``app`` fixture).
"""

from __future__ import annotations

import datetime as dt
import time
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Lead
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import identity, loader, role_conditions, roles, tokens
from crm_rbac_plugin import team as team_service
from crm_rbac_plugin.audit import names as audit_names
from crm_rbac_plugin.audit import sentences as audit_sentences
from crm_rbac_plugin.errors import PermissionDenied, ValidationError
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.oversight import history
from tests.rbac_helpers import custom_role, fast_passwords, filtered_ids, remove_roles  # noqa: F401
from tests.test_api import Api
from tests.test_settings_ui import errors_in, give_role_admin, policy_snapshot

PARIS_WINDOW = {"weekdays": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "18:00"}
#: Monday 5 January 2026, 09:30 in Paris (CET, UTC+1).
MONDAY_0830_UTC = dt.datetime(2026, 1, 5, 8, 30)


class Clock:
    """The plugin's clock for the request path, moved by the test."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, now: dt.datetime) -> None:
        self.now = now
        monkeypatch.setattr(identity, "utcnow", lambda: self.now)


@pytest.fixture
def api_as(app: Flask, world: SimpleNamespace) -> Any:
    """``api_as(key)``: an API client with a fresh token of member ``key``."""
    def make(key: str) -> Api:
        _, plaintext = tokens.create_token(rbac, world.members[key], f"test {key}")
        db.session.commit()
        return Api(app, plaintext)
    return make


def role_of(world: SimpleNamespace, key: str) -> Any:
    return next(r for r in db.session.scalars(sa.select(rbac.models.Role).where(
        rbac.models.Role.workspace_id == world.ws.id, rbac.models.Role.key == key)))


def owner_access(world: SimpleNamespace) -> Any:
    return rbac.access_for(world.members["owner"])


def windowed_member(world: SimpleNamespace, condition: dict[str, Any]) -> Any:
    """member2 holding only "Window leads" (view every lead), under ``condition``."""
    world.ws.timezone = "Europe/Paris"
    member2 = world.members["member2"]
    remove_roles(member2)
    role = custom_role(world, "Window leads", [("leads", "view", "all")])
    roles.assign_role(rbac, owner_access(world), member2, role, condition=condition)
    db.session.commit()
    return member2


# -- pure rules ---------------------------------------------------------------------------


@pytest.mark.parametrize(("raw", "field"), [
    ({"start": "18:00", "end": "09:00"}, "end"),
    ({"start": "09:00", "end": "09:00"}, "end"),
    ({"start": "25:00", "end": "26:00"}, "start"),
    ({"start": "09:00"}, "end"),
    ({"weekdays": ["funday"]}, "weekdays"),
    ({"weekdays": "mon,xyz"}, "weekdays"),
    ({"networks": ["10.0.0.300/8"]}, "networks"),
    ({"networks": "not a network"}, "networks"),
    ({"colour": "blue"}, "colour"),
    ("weekdays", "condition"),
    ({"weekdays": 0}, "weekdays"),
    ({"weekdays": False}, "weekdays"),
    ({"weekdays": {}}, "weekdays"),
    ({"networks": 0}, "networks"),
    ({"networks": {}}, "networks"),
    ({"start": 0, "end": "10:00"}, "start"),
    ({"start": "09:00", "end": False}, "end"),
    # a value given with nothing in it is an error, never a dropped limit
    ({"networks": [""]}, "networks"),
    ({"networks": ","}, "networks"),
    ({"networks": " , "}, "networks"),
    ({"networks": ["", " "]}, "networks"),
    ({"weekdays": ","}, "weekdays"),
    ({"weekdays": ", ,"}, "weekdays"),
    ({"start": False, "end": False}, "start"),
    ({"start": 0, "end": 0}, "start"),
])
def test_a_bad_condition_names_its_field(raw: Any, field: str) -> None:
    with pytest.raises(ValidationError) as refused:
        role_conditions.validate(raw)
    assert refused.value.field == field


def test_the_condition_is_described_as_explain_shows_it() -> None:
    cond = role_conditions.validate({**PARIS_WINDOW, "networks": ["10.0.0.0/8", "2001:db8::/32"]})
    assert role_conditions.describe(cond, "Europe/Paris") == (
        "weekdays Mon-Fri 09:00-18:00 Europe/Paris, networks 10.0.0.0/8, 2001:db8::/32")
    assert cond.to_json() == {**PARIS_WINDOW, "networks": ["10.0.0.0/8", "2001:db8::/32"]}
    assert role_conditions.validate({"weekdays": ["Monday", "wed"]}).weekdays == (0, 2)


def test_the_next_boundary_follows_daylight_saving() -> None:
    """Paris skips 02:00-03:00 on 29 March 2026 (01:00 UTC): a window opening at 02:30
    opens at the jump, and the cached access must expire then, not an hour later."""
    cond = role_conditions.validate({"start": "02:30", "end": "04:00"})
    now = dt.datetime(2026, 3, 29, 0, 30)  # 01:30 CET
    assert not role_conditions.in_window(cond, now, "Europe/Paris")
    boundary = role_conditions.next_change(cond, now, "Europe/Paris")
    assert boundary == dt.datetime(2026, 3, 29, 1, 0)
    assert role_conditions.in_window(cond, boundary, "Europe/Paris")


def test_a_stored_condition_that_no_longer_validates_never_holds() -> None:
    cond = role_conditions.stored({"start": "18:00", "end": "09:00"})
    assert cond.broken and not role_conditions.in_window(cond, MONDAY_0830_UTC, "UTC")
    assert not role_conditions.in_networks(cond, "10.0.0.1")


# -- time windows, controlled clock -------------------------------------------------------


def test_the_window_opens_and_closes_by_itself(app: Flask, world: SimpleNamespace,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    member2 = windowed_member(world, PARIS_WINDOW)
    clock = Clock(monkeypatch, MONDAY_0830_UTC)
    inside = rbac.access_for(member2)
    assert "Window leads" in inside.roles
    assert inside.valid_until == dt.datetime(2026, 1, 5, 17, 0)  # 18:00 in Paris
    with rbac.as_member(inside):
        assert filtered_ids(Lead) == {lead.id for lead in world.leads.values()}
    version = inside.policy_version

    clock.now = dt.datetime(2026, 1, 5, 16, 59)
    assert rbac.access_for(member2) is inside  # still cached: nothing changed
    clock.now = dt.datetime(2026, 1, 5, 17, 0)
    outside = rbac.access_for(member2)
    assert outside is not inside and outside.policy_version == version
    assert "Window leads" not in outside.roles
    assert not rbac.can("view", "leads", access=outside)
    with rbac.as_member(outside):
        assert filtered_ids(Lead) == set()
    steps = rbac.explain("view", "leads", access=outside).steps
    assert ("Window leads, weekdays Mon-Fri 09:00-18:00 Europe/Paris: outside the window"
            in steps)

    clock.now = dt.datetime(2026, 1, 10, 10, 0)  # a Saturday
    assert "Window leads" not in rbac.access_for(member2).roles
    clock.now = dt.datetime(2026, 1, 12, 8, 0)  # Monday 09:00 in Paris
    assert "Window leads" in rbac.access_for(member2).roles


def test_a_role_condition_applies_to_every_holder(app: Flask, world: SimpleNamespace,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    member2 = windowed_member(world, {})
    role = member2.member_roles[0].role
    roles.set_role_condition(rbac, owner_access(world), role, {"start": "10:00", "end": "11:00"})
    db.session.commit()
    clock = Clock(monkeypatch, MONDAY_0830_UTC)  # 09:30 in Paris
    access = rbac.access_for(member2)
    assert "Window leads" not in access.roles
    assert any("every day 10:00-11:00 Europe/Paris: outside the window" in note
               for note in access.role_notes)
    clock.now = dt.datetime(2026, 1, 5, 9, 0)
    assert "Window leads" in rbac.access_for(member2).roles


def test_the_workspace_time_zone_is_validated_and_moves_windows(
        app: Flask, world: SimpleNamespace, api_as: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    member2 = windowed_member(world, PARIS_WINDOW)
    Clock(monkeypatch, dt.datetime(2026, 1, 5, 17, 30))  # 18:30 Paris, 12:30 New York
    assert "Window leads" not in rbac.access_for(member2).roles
    owner = api_as("owner")
    refused = owner.patch("/alert-settings", {"timezone": "Mars/Olympus_Mons"})
    assert refused.status_code == 400 and refused.json["field"] == "timezone"
    db.session.expire_all()
    assert world.ws.timezone == "Europe/Paris"
    assert owner.patch("/alert-settings", {"timezone": "America/New_York"}).status_code == 200
    db.session.expire_all()
    assert "Window leads" in rbac.access_for(member2).roles


# -- networks -----------------------------------------------------------------------------


def test_a_network_condition_follows_the_request_address(app: Flask, world: SimpleNamespace,
                                                        api_as: Any) -> None:
    member2 = world.members["member2"]
    remove_roles(member2)
    role = custom_role(world, "Office members", [("members", "view", "all")])
    roles.assign_role(rbac, owner_access(world), member2, role,
                      condition={"networks": ["10.0.0.0/8", "2001:db8::/32"]})
    db.session.commit()
    client = api_as("member2")

    def status(address: str) -> int:
        return client.get("/members", environ_base={"REMOTE_ADDR": address}).status_code

    assert status("10.1.2.3") == 200
    assert status("192.0.2.1") == 403  # the cached Access answers for another network
    assert status("::ffff:10.9.9.9") == 200
    assert status("2001:db8::7") == 200
    assert status("2001:db9::7") == 403
    denied = client.get("/members", environ_base={"REMOTE_ADDR": "192.0.2.1"})
    assert "outside the networks" in " ".join(
        rbac.access_for(member2).role_notes + (denied.json["message"],))
    # No request, no address (a job, the CLI): outside every network (fail closed).
    row = loader.membership_row(db.session, rbac.models, membership_id=member2.id)
    offline = loader.load_access(db.session, rbac.models, rbac.registry, app.config, row)
    assert "Office members" not in offline.roles


# -- bad input: 400 naming the field, nothing changed ----------------------------------------


def department_rows() -> list[tuple[Any, ...]]:
    m = rbac.models
    return list(db.session.execute(sa.select(m.DepartmentRole.id, m.DepartmentRole.role_id,
                                             m.DepartmentRole.access_condition)))


@pytest.mark.parametrize(("condition", "field"), [
    ({"start": "18:00", "end": "09:00"}, "end"),
    ({"weekdays": ["mon", "someday"]}, "weekdays"),
    ({"networks": ["10.0.0.0/33"]}, "networks"),
    ({"weekdays": 0}, "weekdays"),  # a falsy value of the wrong type is no "no limit"
    ({"networks": False}, "networks"),
    ({"networks": [""]}, "networks"),  # a blank value is no "no limit" either
    ({"networks": ","}, "networks"),
    ({"weekdays": ","}, "weekdays"),
    ({"start": False, "end": False}, "start"),
    ({"start": 0, "end": 0}, "start"),
])
def test_the_api_refuses_a_bad_condition(app: Flask, world: SimpleNamespace, api_as: Any,
                                         condition: dict[str, Any], field: str) -> None:
    role = custom_role(world, "Spare", [("leads", "view", "own")])
    db.session.commit()
    owner, member2 = api_as("owner"), world.members["member2"]
    assignment = member2.member_roles[0]
    sales = world.departments["sales"]
    before, before_departments = policy_snapshot(), department_rows()
    for response in (
            owner.post(f"/members/{member2.id}/roles", {"role_id": role.id,
                                                        "condition": condition}),
            owner.patch(f"/members/{member2.id}/roles/{assignment.id}",
                        {"condition": condition}),
            owner.call("put", f"/roles/{role.id}/condition", {"condition": condition}),
            owner.post(f"/departments/{sales.id}/roles", {"role_id": role.id,
                                                          "condition": condition})):
        assert response.status_code == 400, response.json
        assert response.json["field"] == field
    assert policy_snapshot() == before and department_rows() == before_departments


def test_the_pages_refuse_a_bad_window(app: Flask, world: SimpleNamespace, login: Any) -> None:
    role = custom_role(world, "Spare", [("leads", "view", "own")])
    db.session.commit()
    member2, sales = world.members["member2"], world.departments["sales"]
    client = login(world.users["owner"], world.ws)
    before, before_departments = policy_snapshot(), department_rows()
    page = client.post(f"/settings/members/{member2.id}/roles",
                       data={"role_id": role.id, "start": "18:00", "end": "09:00"})
    assert page.status_code == 400 and "before it starts" in errors_in(page)
    page = client.post(f"/settings/roles/{role.id}/condition",
                       data={"networks": "10.0.0.0/8\nnot-a-network"})
    assert page.status_code == 400 and "not an IPv4 or IPv6 network" in errors_in(page)
    page = client.post(f"/settings/departments/{sales.id}/roles",
                       data={"role_id": role.id, "weekdays": ["mon", "moonday"]})
    assert page.status_code == 400 and "not a weekday" in errors_in(page)
    assert policy_snapshot() == before and department_rows() == before_departments


def test_the_owner_role_takes_no_condition(app: Flask, world: SimpleNamespace, api_as: Any) -> None:
    owner = api_as("owner")
    owner_role = next(mr.role for mr in world.members["owner"].member_roles if mr.role.is_owner)
    before = policy_snapshot()
    response = owner.post(f"/members/{world.members['admin'].id}/roles",
                          {"role_id": owner_role.id, "condition": {"weekdays": ["mon"]}})
    assert response.status_code == 400 and response.json["field"] == "condition"
    response = owner.call("put", f"/roles/{owner_role.id}/condition",
                          {"condition": {"weekdays": ["mon"]}})
    assert response.status_code == 403
    assert policy_snapshot() == before


def test_the_cli_gives_a_conditional_role_and_refuses_a_bad_one(
        app: Flask, world: SimpleNamespace) -> None:
    custom_role(world, "Window leads", [("leads", "view", "all")])
    db.session.commit()
    runner = app.test_cli_runner()
    base = ["rbac", "assignments", "give", "--workspace", "acme", "--as", "owner@example.test",
            "--member", "member2@example.test", "--role", "Window leads"]
    before = policy_snapshot()
    refused = runner.invoke(args=[*base, "--start", "18:00", "--end", "09:00"])
    assert refused.exit_code != 0 and "end:" in refused.output
    refused = runner.invoke(args=[*base, "--network", "300.1.1.1/8"])
    assert refused.exit_code != 0 and "networks:" in refused.output
    assert policy_snapshot() == before
    done = runner.invoke(args=[*base, "--weekdays", "mon-fri", "--start", "09:00",
                               "--end", "18:00"])
    assert done.exit_code == 0, done.output
    db.session.expire_all()
    given = next(mr for mr in world.members["member2"].member_roles
                 if mr.role.name == "Window leads")
    assert given.access_condition == PARIS_WINDOW


# -- roles given to a department ----------------------------------------------------------


def audit_actions() -> list[str]:
    A = rbac.models.AuditEvent
    return list(db.session.scalars(sa.select(A.action).order_by(A.id)))


def test_members_hold_a_department_role_while_they_belong(
        app: Flask, world: SimpleNamespace, api_as: Any, login: Any) -> None:
    extra = custom_role(world, "Lead deleter", [("leads", "view", "all"),
                                                ("leads", "delete", "all")])
    db.session.commit()
    sales, support = world.departments["sales"], world.departments["support"]
    member2, viewer = world.members["member2"], world.members["viewer"]
    owner = api_as("owner")
    assert not rbac.can("delete", "leads", world.leads["member"], access=rbac.access_for(member2))
    version = world.ws.policy_version

    given = owner.post(f"/departments/{sales.id}/roles", {"role_id": extra.id})
    assert given.status_code == 201, given.json
    assert "department_role.added" in audit_actions()
    db.session.expire_all()
    assert world.ws.policy_version > version
    access = rbac.access_for(member2)
    assert "Lead deleter" in access.roles
    assert rbac.can("delete", "leads", world.leads["member"], access=access)
    with rbac.as_member(access):
        assert filtered_ids(Lead, "delete") == {lead.id for lead in world.leads.values()}
    assert "Lead deleter via department Sales" in rbac.explain(
        "delete", "leads", access=access).steps
    assert "Lead deleter" not in rbac.access_for(viewer).roles
    page = login(world.users["owner"], world.ws).get(f"/settings/members/{member2.id}/access")
    assert page.status_code == 200 and "via department" in page.text
    listed = owner.get(f"/departments/{sales.id}/roles").json["roles"]
    assert [r["role"] for r in listed] == ["Lead deleter"]

    # Leaving the department takes the role away, and the cached access with it.
    version = world.ws.policy_version
    team_service.set_department(rbac, owner_access(world), member2, support)
    db.session.commit()
    db.session.expire_all()
    assert world.ws.policy_version > version
    assert "Lead deleter" not in rbac.access_for(member2).roles
    assert "Lead deleter" in rbac.access_for(world.members["member"]).roles

    assert owner.delete(f"/departments/{sales.id}/roles/{extra.id}").status_code == 204
    assert "department_role.removed" in audit_actions()
    db.session.expire_all()
    assert "Lead deleter" not in rbac.access_for(world.members["member"]).roles


def test_a_department_role_keeps_its_condition(app: Flask, world: SimpleNamespace,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    world.ws.timezone = "Europe/Paris"
    extra = custom_role(world, "Office hours", [("leads", "view", "all")])
    roles.give_department_role(rbac, owner_access(world), world.departments["sales"], extra,
                               condition=PARIS_WINDOW)
    db.session.commit()
    clock = Clock(monkeypatch, MONDAY_0830_UTC)
    member2 = world.members["member2"]
    assert "Office hours" in rbac.access_for(member2).roles
    clock.now = dt.datetime(2026, 1, 5, 18, 0)
    later = rbac.access_for(member2)
    assert "Office hours" not in later.roles
    assert ("Office hours, weekdays Mon-Fri 09:00-18:00 Europe/Paris: outside the window"
            in later.role_notes)


def test_escalation_rules_bind_whoever_gives_a_department_role(
        app: Flask, world: SimpleNamespace, api_as: Any) -> None:
    give_role_admin(world, "member")  # members.edit and roles, but no lead deletion
    wide = custom_role(world, "Wide", [("leads", "view", "all"), ("leads", "delete", "all")])
    db.session.commit()
    sales, support = world.departments["sales"], world.departments["support"]
    admin_role = next(mr.role for mr in world.members["admin"].member_roles)
    owner_role = next(mr.role for mr in world.members["owner"].member_roles if mr.role.is_owner)
    member = api_as("member")
    before, before_departments = policy_snapshot(), department_rows()
    wider = member.post(f"/departments/{support.id}/roles", {"role_id": wide.id})
    assert wider.status_code == 403 and "grants more than you hold" in wider.json["message"]
    assert member.post(f"/departments/{support.id}/roles",
                       {"role_id": admin_role.id}).status_code == 403
    as_owner = api_as("owner").post(f"/departments/{support.id}/roles",
                                    {"role_id": owner_role.id})
    assert as_owner.status_code == 400 and as_owner.json["field"] == "role_id"
    assert policy_snapshot() == before and department_rows() == before_departments

    # Moving someone into a department that gives a wider role is giving it.
    roles.give_department_role(rbac, owner_access(world), support, wide)
    db.session.commit()
    with pytest.raises(PermissionDenied, match="grants more than you hold"):
        team_service.set_department(rbac, rbac.access_for(world.members["member"]),
                                    world.members["member2"], support)
    db.session.rollback()
    db.session.expire_all()
    assert world.members["member2"].department_id == sales.id
    before = policy_snapshot()
    with pytest.raises(PermissionDenied, match="grants more than you hold"):
        team_service.invite(rbac, rbac.access_for(world.members["member"]),
                            "newcomer@example.test", [role_of(world, "viewer")],
                            department=support, send=False)
    db.session.rollback()
    assert policy_snapshot() == before


def test_segregation_of_duties_covers_department_roles(app: Flask, world: SimpleNamespace) -> None:
    a = custom_role(world, "Requester", [("leads", "view", "own")])
    b = custom_role(world, "Approver", [("leads", "view", "own")])
    owner = owner_access(world)
    roles.add_conflict(rbac, owner, a, b)
    roles.assign_role(rbac, owner, world.members["member2"], a)
    db.session.commit()
    with pytest.raises(PermissionDenied, match="segregation of duties"):
        roles.give_department_role(rbac, owner, world.departments["sales"], b)
    db.session.rollback()
    assert department_rows() == []


def test_who_could_replays_a_department_role(app: Flask, world: SimpleNamespace) -> None:
    """The replay rewinds department roles from the audit trail, as assignments."""
    extra = custom_role(world, "Lead deleter", [("leads", "view", "all"),
                                                ("leads", "delete", "all")])
    db.session.commit()
    sales, member2 = world.departments["sales"], world.members["member2"]
    lead = world.leads["member"]

    def could(at: dt.datetime) -> bool:
        result = history.who_could(rbac, world.ws.id, "leads", lead.id, at, "delete")
        return next(a for a in result.answers if a.membership_id == member2.id).allowed

    row = roles.give_department_role(rbac, owner_access(world), sales, extra)
    db.session.commit()
    held = utcnow()
    time.sleep(0.01)
    roles.remove_department_role(rbac, owner_access(world), row)
    db.session.commit()
    assert could(held) and not could(utcnow())
    sentences = api_sentences(world)
    assert any("Department Sales given the role" in s for s in sentences), sentences


def api_sentences(world: SimpleNamespace) -> list[str]:
    """The audit trail's headlines, as the audit page writes them."""
    A = rbac.models.AuditEvent
    events = list(db.session.scalars(sa.select(A).where(A.workspace_id == world.ws.id)))
    out = []
    for ev in events:
        for change in (ev.detail or {}).get("changes") or []:
            out.append(audit_sentences.change_line(
                audit_names.load_names(rbac, world.ws.id, events), change, ev).text)
    return out


def test_the_pages_save_conditions_and_department_roles(app: Flask, world: SimpleNamespace,
                                                        login: Any) -> None:
    role = custom_role(world, "Spare", [("leads", "view", "own")])
    db.session.commit()
    member2, sales = world.members["member2"], world.departments["sales"]
    client = login(world.users["owner"], world.ws)
    assert client.get(f"/settings/roles/{role.id}/condition").status_code == 200
    saved = client.post(f"/settings/roles/{role.id}/condition",
                        data={"weekdays": ["sat", "sun"], "networks": "10.0.0.0/8"})
    assert saved.status_code == 302
    given = client.post(f"/settings/members/{member2.id}/roles",
                        data={"role_id": role.id, "weekdays": ["mon"], "start": "08:00",
                              "end": "12:30"})
    assert given.status_code == 302
    to_dept = client.post(f"/settings/departments/{sales.id}/roles", data={"role_id": role.id})
    assert to_dept.status_code == 302
    db.session.expire_all()
    assert role.access_condition == {"weekdays": ["sat", "sun"], "networks": ["10.0.0.0/8"]}
    assignment = next(mr for mr in member2.member_roles if mr.role_id == role.id)
    assert assignment.access_condition == {"weekdays": ["mon"], "start": "08:00", "end": "12:30"}
    page = client.get(f"/settings/departments/{sales.id}/roles")
    assert page.status_code == 200 and "Spare" in page.text
    page = client.get(f"/settings/members/{member2.id}/access")
    assert "weekdays Mon 08:00-12:30 UTC" in page.text and "via department" in page.text
    # A member without members.view reaches neither page; without roles.edit, no condition page.
    viewer = login(world.users["viewer"], world.ws)
    assert viewer.get(f"/settings/departments/{sales.id}/roles").status_code == 403
    assert viewer.get(f"/settings/roles/{role.id}/condition").status_code == 403
    removed = client.post(f"/settings/departments/{sales.id}/roles/{role.id}/remove")
    assert removed.status_code == 302 and department_rows() == []


def test_the_cli_wraps_a_weekday_range_and_refuses_an_option_that_says_nothing(
        app: Flask, world: SimpleNamespace) -> None:
    """``--weekdays fri-mon`` runs through the weekend; ``--weekdays ,`` or ``--network ""``
    is a usage error, never a silently dropped limit."""
    custom_role(world, "Weekend leads", [("leads", "view", "all")])
    db.session.commit()
    runner = app.test_cli_runner()
    base = ["rbac", "assignments", "give", "--workspace", "acme", "--as", "owner@example.test",
            "--member", "member2@example.test", "--role", "Weekend leads"]
    before = policy_snapshot()
    for option, value in (("--weekdays", ","), ("--weekdays", ""), ("--network", ""),
                          ("--network", " "), ("--start", "")):
        refused = runner.invoke(args=[*base, option, value])
        assert refused.exit_code == 2 and option in refused.output, (option, value, refused.output)
    assert policy_snapshot() == before
    done = runner.invoke(args=[*base, "--weekdays", "fri-mon"])
    assert done.exit_code == 0, done.output
    db.session.expire_all()
    given = next(mr for mr in world.members["member2"].member_roles
                 if mr.role.name == "Weekend leads")
    assert given.access_condition["weekdays"] == ["mon", "fri", "sat", "sun"]
