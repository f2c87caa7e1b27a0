"""The rules of ``policy.py`` one by one: stacking, denies, inheritance, time, plans...

Each record-level expectation goes through :func:`tests.rbac_helpers.allowed_tags`,
so it is checked against the pure policy and the query filter at once.
"""

from __future__ import annotations

import datetime as dt
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
import sqlalchemy as sa
from flask import Flask

from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, User
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import InvalidCondition, UnknownResource, conditions, loader, workspaces
from crm_rbac_plugin.models import utcnow
from tests.rbac_helpers import (  # noqa: F401
    access_of,
    allowed_tags,
    custom_role,
    fast_passwords,
    give_role,
    matching_three_ways,
    remove_roles,
    world_records,
)

WON = {"member-won", "member2-won", "manager-won", "junior_rep-won", "unowned-won"}
NEW = {"member-new", "member2-new", "manager-new", "junior_rep-new", "unowned-new"}
WS_LEADS = {"member", "member2", "manager", "junior_rep", "unowned"}


def tags(w: SimpleNamespace, member: str, resource: str, action: str = "view") -> set[str]:
    """The world's records of ``resource`` the member may ``action`` (policy == filter)."""
    return allowed_tags(w.members[member], resource, action, world_records(w)[resource])


def resource_level(w: SimpleNamespace, member: str, resource: str) -> set[str]:
    """The actions the member may do on ``resource`` at resource level."""
    access = access_of(w.members[member])
    return {a for a in ("view", "create", "edit", "delete", "export", "manage")
            if rbac.can(a, resource, access=access)}


def role(w: SimpleNamespace, key: str, workspace: Any = None) -> Any:
    return workspaces.role_by_key(rbac, workspace or w.ws, key)


@contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Fail instead of hanging if the block takes longer than ``seconds``."""
    def expired(signum: int, frame: Any) -> None:
        raise TimeoutError(f"still running after {seconds} s")
    previous = signal.signal(signal.SIGALRM, expired)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


# -- stacking and denies -----------------------------------------------------

def test_roles_stack_as_the_union_of_their_allows(world: SimpleNamespace) -> None:
    give_role(world.members["member"], role(world, "finance"))
    assert access_of(world.members["member"]).roles == ("Finance", "Member")
    assert tags(world, "member", "deals") == {"member-new", "member-won", "unowned-new"} | WON
    assert tags(world, "member", "deals", "edit") == {"member-new", "member-won"}
    # Export comes from Finance only: closed deals, whoever owns them.
    assert tags(world, "member", "deals", "export") == WON
    assert tags(world, "member", "leads", "export") == set()

    give_role(world.members["junior_rep"], role(world, "client_success"))
    assert tags(world, "junior_rep", "leads") == {"junior_rep", "unowned"}
    assert tags(world, "junior_rep", "clients") == WS_LEADS  # every client of w.ws
    assert resource_level(world, "junior_rep", "tasks") == {"view", "create", "edit"}


def test_explicit_deny_wins_over_another_roles_allow(world: SimpleNamespace) -> None:
    no_export = custom_role(world, "No lead export")
    workspaces.add_grant(rbac, no_export, "leads", "export", "all", effect="deny")
    give_role(world.members["admin"], no_export)

    assert "export" not in resource_level(world, "admin", "leads")
    assert tags(world, "admin", "leads", "export") == set()
    # Only that cell is denied.
    assert resource_level(world, "admin", "leads") == {"view", "create", "edit", "delete",
                                                       "manage"}
    assert tags(world, "admin", "leads") == WS_LEADS
    assert tags(world, "admin", "deals", "export") == WON | NEW


def test_a_narrower_deny_removes_only_matching_rows(world: SimpleNamespace) -> None:
    hide_won = custom_role(world, "Hide won deals", [("deals", "view", "all")], effect="deny",
                           condition=[{"field": "stage", "op": "eq", "value": "won"}])
    give_role(world.members["viewer"], hide_won)
    # A conditional deny does not close the resource: some deals stay visible.
    assert resource_level(world, "viewer", "deals") == {"view"}
    assert tags(world, "viewer", "deals") == NEW
    assert tags(world, "viewer", "leads") == WS_LEADS
    # Records hidden from view cannot be edited either (the Admin's edit-all
    # cannot reach a won deal once the same member is denied viewing it).
    give_role(world.members["admin"], hide_won)
    assert tags(world, "admin", "deals", "edit") == NEW
    # A deny with a narrow scope removes only the rows in that scope.
    not_mine = custom_role(world, "Not my own deals", [("deals", "delete", "own")],
                           effect="deny")
    give_role(world.members["manager"], not_mine)
    assert tags(world, "manager", "deals", "delete") == {"member-new", "member-won"}
    assert tags(world, "manager", "deals", "edit") == {"member-new", "member-won",
                                                      "manager-new", "manager-won"}


# -- inheritance ---------------------------------------------------------------

def test_a_role_inherits_its_parents_grants(world: SimpleNamespace) -> None:
    child = custom_role(world, "Viewer plus", [("leads", "export", "all")],
                        parent=role(world, "viewer"))
    remove_roles(world.members["finance"])
    give_role(world.members["finance"], child)
    assert access_of(world.members["finance"]).roles == ("Viewer", "Viewer plus")
    assert tags(world, "finance", "deals") == WON | NEW
    assert tags(world, "finance", "leads", "export") == WS_LEADS
    assert tags(world, "finance", "deals", "export") == set()
    # A parent in another workspace is not followed.
    borrower = custom_role(world, "Borrower")
    borrower.parent_id = role(world, "admin", world.ws2).id
    db.session.flush()
    remove_roles(world.members["viewer"])
    give_role(world.members["viewer"], borrower)
    assert access_of(world.members["viewer"]).roles == ("Borrower",)
    assert tags(world, "viewer", "leads") == set()


def test_inheritance_through_a_chain_of_three(world: SimpleNamespace) -> None:
    grand = custom_role(world, "Grandparent", [("leads", "view", "all"), ("leads", "edit", "all")])
    parent = custom_role(world, "Parent", [("deals", "view", "own")], parent=grand)
    child = custom_role(world, "Child", parent=parent)
    remove_roles(world.members["junior_rep"])
    give_role(world.members["junior_rep"], child)
    assert access_of(world.members["junior_rep"]).roles == ("Child", "Grandparent", "Parent")
    assert tags(world, "junior_rep", "leads", "edit") == WS_LEADS
    assert tags(world, "junior_rep", "deals") == {"junior_rep-new", "junior_rep-won",
                                                  "unowned-new", "unowned-won"}


def test_a_parent_cycle_terminates_with_both_roles(world: SimpleNamespace) -> None:
    a = custom_role(world, "Cycle A", [("leads", "view", "own")])
    b = custom_role(world, "Cycle B", [("deals", "view", "all")], parent=a)
    a.parent = b
    db.session.flush()
    remove_roles(world.members["junior_rep"])
    give_role(world.members["junior_rep"], a)
    with deadline(10):
        access = access_of(world.members["junior_rep"])
        assert access.roles == ("Cycle A", "Cycle B")
        assert tags(world, "junior_rep", "leads") == {"junior_rep", "unowned"}
        assert tags(world, "junior_rep", "deals") == WON | NEW


# -- time-limited assignments ---------------------------------------------------

def _load(w: SimpleNamespace, app: Flask, member: str, now: dt.datetime) -> Any:
    row = loader.membership_row(db.session, rbac.models, membership_id=w.members[member].id)
    return loader.load_access(db.session, rbac.models, rbac.registry, app.config, row, now=now)


#: Assignment windows, in hours from now, and whether the role counts now.
WINDOWS: list[tuple[dict[str, int], bool]] = [
    ({"expires_at": -1}, False),                   # expired an hour ago
    ({"starts_at": +1}, False),                    # starts in an hour
    ({"starts_at": -2, "expires_at": -1}, False),  # a window in the past
    ({"starts_at": -1, "expires_at": +1}, True),   # current window
    ({"starts_at": -1}, True),
    ({"expires_at": +1}, True),
]


def test_time_limited_assignments(app: Flask, world: SimpleNamespace) -> None:
    now = utcnow()
    membership = world.members["junior_rep"]
    for window, counts in WINDOWS:
        assignment = give_role(membership, role(world, "viewer"),
                               **{k: now + dt.timedelta(hours=h) for k, h in window.items()})
        access = _load(world, app, "junior_rep", now)
        assert ("Viewer" in access.roles) is counts, window
        assert rbac.can("view", "deals", access=access) is counts, window
        assert tags(world, "junior_rep", "deals") == (WON | NEW if counts else set()), window
        db.session.delete(assignment)
        db.session.flush()


def test_cached_access_expires_by_itself(app: Flask, world: SimpleNamespace,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    now = utcnow().replace(microsecond=0)
    clock = [now]
    monkeypatch.setattr("crm_rbac_plugin.identity.utcnow", lambda: clock[0])
    ends, starts = now + dt.timedelta(hours=1), now + dt.timedelta(hours=2)
    give_role(world.members["junior_rep"], role(world, "viewer"), expires_at=ends)
    give_role(world.members["junior_rep"], role(world, "finance"), starts_at=starts)
    db.session.commit()

    first = access_of(world.members["junior_rep"])
    assert first.valid_until == ends
    assert first.roles == ("Junior Rep", "Viewer")
    assert access_of(world.members["junior_rep"]) is first  # served from the cache

    clock[0] = ends  # nothing in the database changed, only the time
    second = access_of(world.members["junior_rep"])
    assert second is not first
    assert second.roles == ("Junior Rep",)
    assert second.valid_until == starts
    assert not rbac.can("view", "deals", access=second)

    clock[0] = starts
    third = access_of(world.members["junior_rep"])
    assert third.roles == ("Finance", "Junior Rep")
    assert third.valid_until is None
    assert rbac.can("view", "deals", access=third)


# -- plans, membership status, owner -------------------------------------------

def test_plan_gating_applies_to_the_owner_and_the_filter(app: Flask, world: SimpleNamespace,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(app.config, "RBAC_PLANS", {"free": ["clients", "work"],
                                                   "enterprise": "*"})
    with rbac.system():
        world.ws.plan = "free"
        db.session.commit()
    for resource in ("leads", "deals"):
        assert resource_level(world, "owner", resource) == set()
        assert tags(world, "owner", resource) == set()
        assert tags(world, "admin", resource, "edit") == set()
    assert resource_level(world, "owner", "clients") == {"view", "create", "edit", "delete",
                                                         "export", "manage"}
    assert tags(world, "owner", "clients", "delete") == WS_LEADS
    # The other workspace keeps its plan.
    with rbac.as_member(_membership(world, "outsider", world.ws2)):
        assert db.session.scalars(sa.select(Lead.name)).all() == ["Beta lead"]

    with rbac.system():
        world.ws.plan = "enterprise"
        db.session.commit()
    assert tags(world, "owner", "leads") == WS_LEADS
    assert "export" in resource_level(world, "owner", "deals")

    world.ws.plan = "legacy-2019"  # not in RBAC_PLANS: no module at all
    db.session.flush()
    assert resource_level(world, "owner", "clients") == set()
    assert tags(world, "owner", "clients") == set()


def _membership(w: SimpleNamespace, user: str, workspace: Any) -> Any:
    M = rbac.models.Membership
    return db.session.scalar(sa.select(M).where(M.user_id == w.users[user].id,
                                                M.workspace_id == workspace.id))


def test_a_membership_that_is_not_active_is_denied_everything(world: SimpleNamespace) -> None:
    for member in ("owner", "admin"):
        for status in ("inactive", "pending"):
            world.members[member].status = status
            db.session.flush()
            access = access_of(world.members[member])
            assert not access.active
            for resource in ("leads", "deals", "clients", "tasks", "notes", "members", "roles"):
                assert resource_level(world, member, resource) == set(), (member, status)
            for resource in ("leads", "deals", "clients", "tasks", "notes"):
                for action in ("view", "edit", "delete", "export"):
                    assert tags(world, member, resource, action) == set(), (member, status)
        world.members[member].status = "active"
        db.session.flush()
        assert tags(world, member, "leads", "delete") == WS_LEADS


def test_the_owner_is_never_locked_out(world: SimpleNamespace) -> None:
    lockout = custom_role(world, "Lock out")
    for action in ("view", "edit", "delete", "export", "manage", "create"):
        workspaces.add_grant(rbac, lockout, "leads", action, "all", effect="deny")
    workspaces.add_grant(rbac, lockout, "roles", "manage", "all", effect="deny")
    give_role(world.members["owner"], lockout)
    assert resource_level(world, "owner", "leads") == {"view", "create", "edit", "delete",
                                                       "export", "manage"}
    assert rbac.can("manage", "roles", access=access_of(world.members["owner"]))
    for action in ("view", "edit", "delete", "export"):
        assert tags(world, "owner", "leads", action) == WS_LEADS
    # The same role does lock out a non-owner.
    give_role(world.members["admin"], lockout)
    assert resource_level(world, "admin", "leads") == set()
    assert tags(world, "admin", "leads") == set()


# -- workspace isolation ------------------------------------------------------

@pytest.mark.parametrize("user", ["outsider", "dual"])
def test_a_member_of_another_workspace_never_sees_its_records(
        world: SimpleNamespace, user: str) -> None:
    membership = _membership(world, user, world.ws2)
    ws_ids = {res: {rec.id for tag, rec in recs.items() if tag != "ws2"}
              for res, recs in world_records(world).items()}
    ws_lead_owners = {world.users[k].id for k in ("member", "member2", "manager", "junior_rep")}
    mid = membership.id
    db.session.expunge_all()  # so that get() cannot answer from the identity map
    with rbac.as_member(mid) as access:
        for res, model in (("leads", Lead), ("deals", Deal), ("clients", Client)):
            listed = {r.id for r in db.session.scalars(sa.select(model))}
            assert not listed & ws_ids[res], f"{user} lists {res} of w.ws"
            count = db.session.scalar(sa.select(sa.func.count()).select_from(model))
            assert count == len(listed)
            for ident in sorted(ws_ids[res]):
                assert db.session.get(model, ident) is None
        joined = set(db.session.scalars(
            sa.select(User.id).join(Lead, Lead.owner_id == User.id)))
        assert not joined & ws_lead_owners
        pairs = db.session.execute(sa.select(Lead.id, Client.id).join(Client, sa.true())).all()
        assert bool(pairs) is (user == "dual")  # ws2's Owner sees its lead and client ...
        assert not {lead for lead, _ in pairs} & ws_ids["leads"]  # ... and nothing of w.ws
        assert not {client for _, client in pairs} & ws_ids["clients"]
    for res, ids in ws_ids.items():
        for ident in ids:
            with rbac.system():
                record = db.session.get(rbac.registry.get(res).model, ident)
            for action in ("view", "edit", "delete"):
                assert not rbac.can(action, res, record, access=access)


# -- department and team scopes -----------------------------------------------

@pytest.fixture
def department_leads(world: SimpleNamespace) -> dict[str, Any]:
    """The world's leads of w.ws plus one owned by Support's viewer and one by the Admin."""
    with rbac.system():
        extra = {key: Lead(workspace_id=world.ws.id, owner_id=world.users[key].id,
                           name=f"Lead of {key}") for key in ("viewer", "admin")}
        db.session.add_all(extra.values())
        db.session.commit()
    leads = {k: v for k, v in world_records(world)["leads"].items() if k != "ws2"}
    return {**leads, **extra}


#: Holder of a department-scope role -> (leads they may view, leads they may edit).
DEPARTMENT_SCOPE: dict[str, tuple[set[str], set[str]]] = {
    # Sales: manager, member, member2, junior_rep.
    "junior_rep": ({"member", "member2", "manager", "junior_rep", "unowned"},
                   {"member", "member2", "manager", "junior_rep"}),
    # Support: viewer, client_success.
    "client_success": ({"viewer", "unowned"}, {"viewer"}),
    # No department: only their own records (finance owns none).
    "finance": ({"unowned"}, set()),
}


def test_department_scope(world: SimpleNamespace, department_leads: dict[str, Any]) -> None:
    dept = custom_role(world, "Department leads", [("leads", "view", "department"),
                                                   ("leads", "edit", "department")])
    actual = {}
    for holder in DEPARTMENT_SCOPE:
        remove_roles(world.members[holder])
        give_role(world.members[holder], dept)
        m = world.members[holder]
        actual[holder] = (allowed_tags(m, "leads", "view", department_leads),
                          allowed_tags(m, "leads", "edit", department_leads))
    assert actual == DEPARTMENT_SCOPE


def test_department_scope_follows_department_moves(world: SimpleNamespace,
                                                   department_leads: dict[str, Any]) -> None:
    dept = custom_role(world, "Department leads", [("leads", "view", "department")])
    remove_roles(world.members["junior_rep"])
    give_role(world.members["junior_rep"], dept)
    m = world.members["junior_rep"]
    world.members["member2"].department = world.departments["support"]
    db.session.flush()
    assert allowed_tags(m, "leads", "view", department_leads) == {
        "member", "manager", "junior_rep", "unowned"}
    world.members["junior_rep"].department = world.departments["support"]
    db.session.flush()
    assert allowed_tags(m, "leads", "view", department_leads) == {
        "member2", "viewer", "junior_rep", "unowned"}


def test_department_scope_includes_a_new_member_at_once(world: SimpleNamespace,
                                                       department_leads: dict[str, Any]) -> None:
    """A new member of the department (``add_member``) must bump the policy version.

    Otherwise the cached Access keeps the old department members while the
    SQL twin reads memberships live, and the two disagree.
    """
    dept = custom_role(world, "Department leads", [("leads", "view", "department")])
    remove_roles(world.members["junior_rep"])
    give_role(world.members["junior_rep"], dept)
    db.session.commit()
    m = world.members["junior_rep"]
    assert "viewer" not in allowed_tags(m, "leads", "view", department_leads)  # now cached
    # With Role objects (not keys) add_member flushes once, membership and assignment
    # together, before either has its workspace_id.
    workspaces.add_member(rbac, world.ws, world.users["outsider"], [role(world, "member")],
                          department=world.departments["sales"])
    with rbac.system():
        lead = Lead(workspace_id=world.ws.id, owner_id=world.users["outsider"].id,
                    name="Lead of a newcomer")
        db.session.add(lead)
        db.session.commit()
    assert "newcomer" in allowed_tags(m, "leads", "view", {**department_leads, "newcomer": lead})


def test_team_scope_follows_manager_assignments(world: SimpleNamespace) -> None:
    A = rbac.models.ManagerAssignment
    manager, member, member2 = (world.members[k] for k in ("manager", "member", "member2"))
    assert tags(world, "manager", "leads", "edit") == {"manager", "member"}
    db.session.add(A(manager_id=manager.id, member_id=member2.id))
    db.session.flush()
    assert tags(world, "manager", "leads", "edit") == {"manager", "member", "member2"}
    db.session.delete(db.session.get(A, (manager.id, member.id)))
    db.session.flush()
    assert tags(world, "manager", "leads", "edit") == {"manager", "member2"}
    assert tags(world, "manager", "leads") == {"manager", "member2", "unowned"}
    # Team scope with no assigned members is the member's own records.
    team = custom_role(world, "Team leads", [("leads", "view", "team")])
    remove_roles(world.members["member2"])
    give_role(world.members["member2"], team)
    assert tags(world, "member2", "leads") == {"member2", "unowned"}


# -- unknown names and conditions ------------------------------------------------

def test_unknown_resource_or_action_raises(world: SimpleNamespace) -> None:
    access = access_of(world.members["owner"])
    typo = custom_role(world, "Typo")
    for action, resource in [("view", "invoicez"), ("fly", "leads"), ("export", "settingz"),
                             ("view", "Leads")]:
        with pytest.raises(UnknownResource):
            rbac.can(action, resource, access=access)
        with pytest.raises(UnknownResource):
            rbac.can(f"{resource}.{action}", access=access)
        with pytest.raises(UnknownResource):
            rbac.can(action, resource, world.leads["member"], access=access)
        with pytest.raises(UnknownResource):
            workspaces.add_grant(rbac, typo, resource, action)


INVALID_CONDITIONS: list[Any] = [
    [{"field": "nope", "op": "eq", "value": 1}],
    [{"field": "stage", "op": "like", "value": "w%"}],
    [{"field": "stage", "op": "eq", "value": "won", "extra": 1}],
    [{"field": "amount", "op": "lt", "value": "lots"}],
    [{"field": "amount", "op": "gt", "value": True}],
    [{"field": "close_date", "op": "eq", "value": "yesterday"}],
    [{"field": "client_id", "op": "eq", "value": "abc"}],
    [{"field": "client_id", "op": "eq", "value": 1.5}],
    [{"field": "client_id", "op": "eq", "value": False}],
    [{"field": "stage", "op": "eq", "value": None}],
    [{"field": "stage", "op": "eq", "value": 5}],
    [{"field": "stage", "op": "in", "value": "won"}],
    [{"field": "stage", "op": "in", "value": []}],
    [{"field": "stage", "op": "in", "value": ["won", None]}],
    [{"field": "stage", "op": "is_null", "value": "yes"}],
    [{"op": "eq", "value": "won"}],
    ["stage = won"],
    "stage = won",
]


@pytest.mark.parametrize("raw", INVALID_CONDITIONS, ids=lambda raw: repr(raw)[:60])
def test_invalid_conditions_are_refused(raw: Any) -> None:
    with pytest.raises(InvalidCondition):
        conditions.validate(Deal, raw)


def test_add_grant_refuses_invalid_conditions(world: SimpleNamespace) -> None:
    bad = custom_role(world, "Bad")
    for raw in INVALID_CONDITIONS:
        with pytest.raises(InvalidCondition):
            workspaces.add_grant(rbac, bad, "deals", "view", "all", condition=raw)
    assert bad.grants == []


def test_valid_conditions_are_normalised() -> None:
    raw = [{"field": "amount", "op": "gt", "value": "1000.50"},
           {"field": "close_date", "op": "lt", "value": "2024-01-31"},
           {"field": "stage", "value": "won"},
           {"field": "stage", "op": "in", "value": ["won", "lost"]},
           {"field": "client_id", "op": "is_null", "value": None},
           {"field": "owner_id", "op": "eq", "value": "7"}]
    assert conditions.validate(Deal, raw) == (
        ("amount", "gt", Decimal("1000.50")), ("close_date", "lt", dt.date(2024, 1, 31)),
        ("stage", "eq", "won"), ("stage", "in", ("won", "lost")),
        ("client_id", "is_null", True), ("owner_id", "eq", 7))
    assert conditions.validate(Deal, {"field": "stage", "value": "won"}) == (
        ("stage", "eq", "won"),)
    assert conditions.validate(Deal, None) == ()


# -- condition operators: Python and SQL, NULLs included ---------------------------

@pytest.fixture
def varied_deals(world: SimpleNamespace) -> dict[str, Any]:
    """Deals of w.ws with NULL and non-NULL close dates, clients and owners."""
    c = world.clients["member"]
    specs = {
        "a": ("won", Decimal("500.00"), dt.date(2024, 1, 1), c, world.users["member"]),
        "b": ("lost", Decimal("1500.50"), None, None, world.users["member2"]),
        "c": ("new", Decimal("1000.00"), dt.date(2024, 6, 30), None, None),
        "d": ("won", Decimal("2000.00"), None, c, None),
        "e": ("proposal", Decimal("0.00"), dt.date(2023, 12, 31), None, world.users["member"]),
    }
    with rbac.system():
        deals = {tag: Deal(workspace_id=world.ws.id, title=f"deal {tag}", stage=stage,
                           amount=amount, close_date=close, client_id=client and client.id,
                           owner_id=owner and owner.id)
                 for tag, (stage, amount, close, client, owner) in specs.items()}
        db.session.add_all(deals.values())
        db.session.commit()
    return deals


CLAUSES = [
    {"field": "stage", "op": "eq", "value": "won"},
    {"field": "stage", "op": "ne", "value": "won"},
    {"field": "stage", "op": "in", "value": ["won", "lost"]},
    {"field": "amount", "op": "lt", "value": "1000"},
    {"field": "amount", "op": "gt", "value": "1000"},
    {"field": "close_date", "op": "eq", "value": "2024-01-01"},
    {"field": "close_date", "op": "ne", "value": "2024-01-01"},
    {"field": "close_date", "op": "in", "value": ["2024-01-01", "2024-06-30"]},
    {"field": "close_date", "op": "lt", "value": "2024-03-01"},
    {"field": "close_date", "op": "gt", "value": "2024-03-01"},
    {"field": "close_date", "op": "is_null", "value": True},
    {"field": "close_date", "op": "is_null", "value": False},
    {"field": "owner_id", "op": "ne", "value": 4},
    {"field": "owner_id", "op": "is_null", "value": True},
    {"field": "client_id", "op": "ne", "value": 1},
    {"field": "client_id", "op": "gt", "value": 0},
]


def _clause_id(clause: dict[str, Any]) -> str:
    return f"{clause['field']} {clause['op']} {clause['value']}"


def test_condition_ops_agree_in_python_and_sql(world: SimpleNamespace,
                                               varied_deals: dict[str, Any]) -> None:
    """Each clause alone: SQL == Python, NOT(SQL) is the complement, and roles agree.

    One world for all clauses (a loop, not parametrize) to keep PostgreSQL fast;
    the results are compared as dicts keyed by clause so a diff names the clause.
    """
    by_python, by_sql, negated, via_allow, via_deny = {}, {}, {}, {}, {}
    remove_roles(world.members["finance"])
    remove_roles(world.members["viewer"])
    for n, clause in enumerate(CLAUSES):
        key = _clause_id(clause)
        clauses = conditions.validate(Deal, [clause])
        by_python[key], by_sql[key], negated[key] = matching_three_ways(
            Deal, varied_deals, clauses)
        # ... and through roles: an allow, and a deny on top of view-all.
        allow = custom_role(world, f"Allow {n}", [("deals", "view", "all")], condition=[clause])
        deny = custom_role(world, f"Deny {n}", [("deals", "view", "all")], effect="deny",
                           condition=[clause])
        deny.parent = role(world, "viewer")
        mr_allow = give_role(world.members["finance"], allow)
        mr_deny = give_role(world.members["viewer"], deny)
        via_allow[key] = allowed_tags(world.members["finance"], "deals", "view", varied_deals)
        via_deny[key] = set(varied_deals) - allowed_tags(world.members["viewer"], "deals",
                                                         "view", varied_deals)
        db.session.delete(mr_allow)
        db.session.delete(mr_deny)
        db.session.flush()
    assert by_sql == by_python
    assert negated == by_python  # never SQL's unknown: NOT selects exactly the rest
    assert via_allow == by_python
    assert via_deny == by_python
    # The fixture is varied enough that every clause splits the deals.
    assert all(0 < len(tags) < len(varied_deals) for tags in by_python.values()), by_python
