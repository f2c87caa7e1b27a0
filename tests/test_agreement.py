"""The core guarantee: the pure policy and the query filter always agree.

Hypothesis draws random policies (roles with random grants over leads,
deals, tasks and clients, random scopes, allow/deny effects, conditions on
NULL-able fields, parent roles, one or two stacked roles), a random
department, random manager assignments, the ``RBAC_UNOWNED_VISIBLE``
setting and a random sharing agreement from the other workspace (random
shared actions and conditions; active, pending or expired); then for every
record of every resource and every action,
``rbac.can(action, resource, record, access=a)`` must equal "the filtered
select returns the record", and the conditional role is in force exactly when
the condition holds (computed independently here).

The world is built once per test (and backend); each example makes its
changes in the open transaction and rolls them back, so examples never see
each other. Access is computed with ``loader.load_access`` directly: a rolled
back example must not leave an Access in the process cache.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
import zoneinfo
from dataclasses import dataclass
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from crm_app.extensions import db
from crm_app.models import Client, Deal, Lead, Task
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import Access, loader, workspaces
from crm_rbac_plugin.errors import InvalidCondition, ValidationError
from tests.rbac_helpers import fast_passwords, filtered_ids  # noqa: F401

MODELS: dict[str, type] = {"leads": Lead, "deals": Deal, "tasks": Task, "clients": Client}
ACTIONS = ("view", "edit", "delete", "export")
SCOPES = ("own", "team", "department", "all")
SUBJECTS = ("member", "manager", "viewer", "junior_rep", "client_success", "finance")
TEAMMATES = ("member", "member2", "junior_rep", "viewer", "client_success")
BUILTIN_PARENTS = ("viewer", "member", "manager", "finance", "client_success")
#: Examples per run and backend; RBAC_AGREEMENT_EXAMPLES raises it. The
#: security battery runs the same property longer (tests/security).
MAX_EXAMPLES = int(os.environ.get("RBAC_AGREEMENT_EXAMPLES", "60"))

D1, D2, D3 = dt.date(2024, 1, 1), dt.date(2024, 6, 30), dt.date(2025, 1, 1)

#: Lead names and text condition values: mixed case and accents, whose order
#: differs between code points and a language collation ("Mango" < "apple" in C).
TEXTS = ("apple", "Apple", "Mango", "mango", "Émile", "emile", "Zoë", "zoe", "ß", "straße")
#: Amount condition values, with values no Numeric(12, 2) column holds (more
#: decimals, out of range, NaN, infinities): the service refuses them, and
#: :func:`apply` then stores them past it, as a bad migration would, so the
#: property also covers conditions that fail closed.
AMOUNTS = ("1000", "1002", "1003.50", "500", "1000.01", "999.99", "1000.004", "1002.0001",
           "NaN", "Infinity", "-Infinity", "1e400", 10**30, "99999999999")
#: Client ids past INTEGER's range, refused and stored in the same way.
HUGE_IDS = (2**31, 10**30, -(2**31) - 1)


def condition_space(ids: dict[str, Any]) -> dict[str, st.SearchStrategy[dict[str, Any]]]:
    """Clauses per resource over a small value space, NULL-able fields included."""
    users = st.sampled_from(ids["users"])
    clients = st.sampled_from(ids["clients"]) | st.sampled_from(HUGE_IDS)

    def clause(field: str, ops: tuple[str, ...], values: st.SearchStrategy[Any]
               ) -> st.SearchStrategy[dict[str, Any]]:
        def build(op: str, value: Any, many: list[Any]) -> dict[str, Any]:
            if op == "in":
                return {"field": field, "op": op, "value": many}
            if op == "is_null":
                return {"field": field, "op": op, "value": bool(value)}
            return {"field": field, "op": op, "value": value}
        return st.builds(build, st.sampled_from(ops), values,
                         st.lists(values, min_size=1, max_size=3, unique=True))

    owner = clause("owner_id", ("eq", "ne", "in", "is_null"), users)
    dates = st.sampled_from([D1.isoformat(), D2.isoformat(), D3.isoformat()])
    return {
        "leads": st.one_of(
            clause("status", ("eq", "ne", "in", "lt", "gt"),
                   st.sampled_from(["new", "contacted", "qualified", "lost"])),
            clause("source", ("eq", "ne", "in"), st.sampled_from(["", "web", "referral"])),
            clause("name", ("lt", "gt", "eq", "ne", "in"), st.sampled_from(TEXTS)),
            owner),
        "deals": st.one_of(
            clause("stage", ("eq", "ne", "in"), st.sampled_from(["new", "won", "lost"])),
            clause("amount", ("lt", "gt", "eq", "ne", "in"), st.sampled_from(AMOUNTS)),
            clause("close_date", ("eq", "ne", "lt", "gt", "in", "is_null"), dates),
            clause("client_id", ("eq", "ne", "in", "is_null", "gt"), clients),
            owner),
        "tasks": st.one_of(
            clause("status", ("eq", "ne"), st.sampled_from(["open", "done"])),
            clause("due_date", ("lt", "gt", "eq", "is_null"), dates),
            clause("client_id", ("eq", "ne", "in", "is_null"), clients),
            owner),
        "clients": st.one_of(
            clause("region", ("eq", "ne", "in"), st.sampled_from(["north", "south"])),
            owner),
    }


@dataclass(frozen=True)
class GrantSpec:
    resource: str
    action: str
    scope: str
    effect: str
    condition: tuple[dict[str, Any], ...]


@dataclass(frozen=True)
class PolicySpec:
    subject: str
    department: str | None
    team: tuple[str, ...]
    roles: tuple[tuple[GrantSpec, ...], ...]  # one or two stacked roles
    parent_grants: tuple[GrantSpec, ...] | None  # a generated parent of the first role
    builtin_parent: str | None  # or a built-in role as that parent
    unowned_visible: bool
    visibility: str | None = None  # the member's visibility level (All / Department / Own)
    share: ShareSpec | None = None  # an agreement from workspace 2 to the subject's
    gate: GateSpec | None = None  # a condition on the first role, its assignment or department


@dataclass(frozen=True)
class GateSpec:
    """A condition on when the first generated role is in force, and the instant and
    client address the Access is built for."""

    where: str  # "assignment", "role" or "department" (the role given to the department)
    weekdays: tuple[str, ...]
    window: tuple[int, int] | None  # hours, start < end
    networks: tuple[str, ...]
    timezone: str
    now: dt.datetime
    address: str | None

    def condition(self) -> dict[str, Any]:
        out: dict[str, Any] = {"weekdays": list(self.weekdays), "networks": list(self.networks)}
        if self.window is not None:
            out["start"], out["end"] = (f"{h:02d}:00" for h in self.window)
        return out

    def holds(self) -> bool:
        """The condition's meaning, computed here independently of the plugin."""
        local = self.now.replace(tzinfo=dt.UTC).astimezone(zoneinfo.ZoneInfo(self.timezone))
        if self.weekdays and DAYS[local.weekday()] not in self.weekdays:
            return False
        if self.window is not None and not self.window[0] <= local.hour < self.window[1]:
            return False
        if not self.networks:
            return True
        if self.address is None:
            return False
        ip = ipaddress.ip_address(self.address)
        return any(ip.version == n.version and ip in n
                   for n in map(ipaddress.ip_network, self.networks))


DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
GATES = st.builds(
    GateSpec, where=st.sampled_from(["assignment", "role", "department"]),
    weekdays=st.lists(st.sampled_from(DAYS), max_size=7, unique=True).map(tuple),
    window=st.none() | st.tuples(st.integers(0, 23), st.integers(1, 24)).filter(
        lambda w: w[0] < w[1]),
    networks=st.lists(st.sampled_from(["10.0.0.0/8", "192.0.2.0/24", "2001:db8::/32"]),
                      max_size=2, unique=True).map(tuple),
    timezone=st.sampled_from(["UTC", "Europe/Paris", "America/New_York", "Asia/Kolkata"]),
    now=st.datetimes(min_value=dt.datetime(2026, 1, 1), max_value=dt.datetime(2026, 12, 31)),
    address=st.sampled_from([None, "10.1.2.3", "192.0.2.9", "2001:db8::5", "198.51.100.1"]))


@dataclass(frozen=True)
class ShareSpec:
    """A sharing agreement as stored, including shapes the service refuses (no view)."""

    permissions: tuple[tuple[str, str, tuple[dict[str, Any], ...]], ...]
    status: str  # "active", "pending" or "expired" (active, past its date)


def policy_specs(ids: dict[str, Any]) -> st.SearchStrategy[PolicySpec]:
    space = condition_space(ids)

    @st.composite
    def grant(draw: st.DrawFn) -> GrantSpec:
        resource = draw(st.sampled_from(sorted(MODELS)))
        condition = draw(st.lists(space[resource], max_size=2))
        return GrantSpec(resource, draw(st.sampled_from(ACTIONS)), draw(st.sampled_from(SCOPES)),
                         draw(st.sampled_from(["allow", "allow", "deny"])), tuple(condition))

    grants = st.lists(grant(), min_size=1, max_size=7,
                      unique_by=lambda g: (g.resource, g.action, g.effect)).map(tuple)

    @st.composite
    def shared(draw: st.DrawFn) -> tuple[str, str, tuple[dict[str, Any], ...]]:
        resource = draw(st.sampled_from(sorted(MODELS)))
        return (resource, draw(st.sampled_from(ACTIONS)),
                tuple(draw(st.lists(space[resource], max_size=1))))

    shares = st.builds(
        ShareSpec,
        permissions=st.lists(shared(), min_size=1, max_size=6,
                             unique_by=lambda p: (p[0], p[1])).map(tuple),
        status=st.sampled_from(["active", "active", "active", "pending", "expired"]))
    return st.builds(
        PolicySpec,
        subject=st.sampled_from(SUBJECTS),
        department=st.sampled_from([None, "sales", "support"]),
        team=st.lists(st.sampled_from(TEAMMATES), max_size=3, unique=True).map(tuple),
        roles=st.lists(grants, min_size=1, max_size=2).map(tuple),
        parent_grants=st.none() | grants,
        builtin_parent=st.none() | st.sampled_from(BUILTIN_PARENTS),
        unowned_visible=st.booleans(),
        visibility=st.sampled_from([None, "own", "department", "all"]),
        share=st.none() | shares,
        gate=st.none() | GATES,
    )


def vary_records(w: SimpleNamespace) -> None:
    """Give the world's records varied, partly NULL, values for the conditions to split."""
    clients = list(w.clients.values())
    statuses = ["new", "contacted", "qualified", "lost"]
    with rbac.system():
        # An amount the Numeric(12, 2) column cannot hold is refused at the flush:
        # no record ever carries one (SQLite would keep it, the ORM round it).
        db.session.add(Deal(workspace_id=w.ws.id, title="three decimals",
                            amount=Decimal("1000.004")))
        try:
            db.session.flush()
        except ValidationError as refused:
            assert refused.field == "amount"
        else:
            raise AssertionError("an amount with three decimals was stored")
        db.session.rollback()
        for i, lead in enumerate(w.leads.values()):
            lead.status = statuses[i % 4]
            lead.source = ["", "web", "referral"][i % 3]
            lead.name = TEXTS[i % len(TEXTS)]
        for i, deal in enumerate(w.deals.values()):
            deal.amount = Decimal(["1000", "1002", "1003.50", "500", "1001", "1000.01",
                                   "999.99"][i % 7])
            deal.close_date = [None, D1, D2, D3][i % 4]
            deal.client_id = None if i % 3 == 0 else clients[i % len(clients)].id
        for i, task in enumerate(w.tasks.values()):
            task.status = ["open", "done"][i % 2]
            task.due_date = [None, D1, D2][i % 3]
        # Workspace 2's records, for sharing agreements: owned by the first
        # workspace's users too (the own/team/department scopes of a shared record).
        ws2 = w.ws2.id
        owners = [w.users[k].id for k in ("member", "manager", "dual", "outsider")] + [None]
        shared_clients = [Client(workspace_id=ws2, owner_id=o, name=f"ws2 client {i}",
                                 region=["north", "south"][i % 2])
                          for i, o in enumerate(owners)]
        db.session.add_all(shared_clients)
        db.session.flush()
        for i, owner in enumerate(owners):
            db.session.add_all([
                Lead(workspace_id=ws2, owner_id=owner, name=TEXTS[-1 - i],
                     status=statuses[i % 4], source=["", "web"][i % 2]),
                Deal(workspace_id=ws2, owner_id=owner, title=f"ws2 deal {i}",
                     stage=["new", "won"][i % 2], amount=Decimal(1000 + i),
                     close_date=[None, D1, D2][i % 3],
                     client_id=shared_clients[i % len(shared_clients)].id),
                Task(workspace_id=ws2, owner_id=owner, title=f"ws2 task {i}",
                     status=["open", "done"][i % 2],
                     client_id=None if i % 2 else shared_clients[(i + 1) % 5].id),
            ])
        db.session.add_all([
            Deal(workspace_id=w.ws.id, owner_id=None, title="unowned, no client", stage="lost"),
            Task(workspace_id=w.ws.id, owner_id=None, title="unowned loose task"),
            Task(workspace_id=w.ws.id, owner_id=w.users["viewer"].id,
                 client_id=w.clients["unowned"].id, title="viewer's task"),
            Lead(workspace_id=w.ws.id, owner_id=w.users["client_success"].id, name="cs lead"),
        ])
        db.session.commit()


def apply(w: SimpleNamespace, spec: PolicySpec) -> Any:
    """Make the spec's roles, assignments and memberships; return the subject's membership."""
    m = rbac.models
    subject = w.members[spec.subject]
    for mr in list(subject.member_roles):
        db.session.delete(mr)
    for a in db.session.scalars(sa.select(m.ManagerAssignment).where(
            m.ManagerAssignment.manager_id == subject.id)):
        db.session.delete(a)
    subject.department = w.departments[spec.department] if spec.department else None
    subject.visibility = spec.visibility

    def role(name: str, grants: tuple[GrantSpec, ...], parent: Any = None) -> Any:
        r = m.Role(workspace=w.ws, name=name, parent=parent)
        for g in grants:
            add_grant_as_stored(r, g)
        db.session.add(r)
        return r

    parent = None
    if spec.parent_grants is not None:
        parent = role("Generated parent", spec.parent_grants)
    elif spec.builtin_parent is not None:
        parent = workspaces.role_by_key(rbac, w.ws, spec.builtin_parent)
    gate = spec.gate
    if gate is not None:
        w.ws.timezone = gate.timezone
    for n, grants in enumerate(spec.roles):
        generated = role(f"Generated {n}", grants, parent if n == 0 else None)
        if n == 0 and gate is not None and gate.where == "role":
            generated.access_condition = gate.condition()
        if n == 0 and gate is not None and gate.where == "department" and spec.department:
            db.session.add(m.DepartmentRole(workspace=w.ws, department=subject.department,
                                            role=generated, access_condition=gate.condition()))
            continue
        assignment = workspaces.assign_role(rbac, subject, generated)
        if n == 0 and gate is not None and gate.where != "role":
            assignment.access_condition = gate.condition()
    for mate in spec.team:
        if mate != spec.subject:
            db.session.add(m.ManagerAssignment(manager_id=subject.id,
                                               member_id=w.members[mate].id))
    if spec.share is not None:
        expired = spec.share.status == "expired"
        agreement = m.SharingAgreement(
            granting_workspace_id=w.ws2.id, receiving_workspace_id=w.ws.id,
            status="active" if expired else spec.share.status,
            expires_at=dt.datetime(2000, 1, 1) if expired else None)
        for resource, action, condition in spec.share.permissions:
            agreement.permissions.append(m.SharingPermission(
                resource=resource, action=action, condition=list(condition) or None))
        db.session.add(agreement)
    db.session.flush()
    return subject


def add_grant_as_stored(role: Any, g: GrantSpec) -> None:
    """Add a grant through the service; a condition it refuses is stored as is, past it."""
    try:
        workspaces.add_grant(rbac, role, g.resource, g.action, g.scope, effect=g.effect,
                             condition=list(g.condition) or None)
    except InvalidCondition:
        grant = workspaces.add_grant(rbac, role, g.resource, g.action, g.scope,
                                     effect=g.effect)
        grant.condition = list(g.condition)


def fresh_access(app: Flask, membership: Any, unowned_visible: bool,
                 gate: GateSpec | None = None) -> Access:
    row = loader.membership_row(db.session, rbac.models, membership_id=membership.id)
    config = {**app.config, "RBAC_UNOWNED_VISIBLE": unowned_visible}
    if gate is None:
        return loader.load_access(db.session, rbac.models, rbac.registry, config, row)
    return loader.load_access(db.session, rbac.models, rbac.registry, config, row, gate.now,
                              address=gate.address)


def disagreements(access: Access, records: dict[str, list[Any]]) -> dict[str, Any]:
    """{"resource.action": {"policy only": [...], "filter only": [...]}} for every mismatch."""
    out: dict[str, Any] = {}
    for resource, recs in records.items():
        for action in ACTIONS:
            by_policy = {r.id for r in recs if rbac.can(action, resource, r, access=access)}
            with rbac.as_member(access):
                by_filter = filtered_ids(MODELS[resource], action)
            if by_policy != by_filter:
                out[f"{resource}.{action}"] = {"policy only": sorted(by_policy - by_filter),
                                               "filter only": sorted(by_filter - by_policy)}
    return out


def _spec(subject: str, *grants: tuple[str, str, str, str], department: str | None = None,
          unowned_visible: bool = True) -> PolicySpec:
    """A hand-written example: one role of (resource, action, scope, effect) grants."""
    return PolicySpec(subject, department, (), (tuple(GrantSpec(*g, ()) for g in grants),),
                      None, None, unowned_visible)


#: Corners that random search reaches only rarely; always tried first.
EXPLICIT: list[PolicySpec] = [
    # Department scope for a member without a department: their own records only.
    _spec("member", ("leads", "view", "department", "allow"),
          ("deals", "edit", "department", "allow"), ("deals", "view", "all", "allow")),
    # A deny never extends through the parent: only the viewer's own task is hidden.
    _spec("viewer", ("tasks", "view", "all", "allow"), ("tasks", "view", "own", "deny"),
          ("clients", "view", "all", "allow"), department="support"),
    # Children through a parent seen only because it is unowned, with and without that rule.
    _spec("client_success", ("clients", "view", "own", "allow"), ("tasks", "view", "own", "allow"),
          ("tasks", "edit", "team", "allow")),
    _spec("client_success", ("clients", "view", "own", "allow"), ("tasks", "view", "own", "allow"),
          unowned_visible=False),
    # Sharing: an Owner sees exactly what the agreement shares; a Member within
    # it only their own; a child (task) through a shared parent (client).
    PolicySpec("member", None, (), ((GrantSpec("tasks", "view", "own", "allow", ()),
                                     GrantSpec("clients", "view", "all", "allow", ()),
                                     GrantSpec("clients", "edit", "own", "allow", ())),),
               None, None, True,
               share=ShareSpec((("clients", "view", ({"field": "region", "value": "north"},)),
                                ("clients", "edit", ()), ("tasks", "view", ())), "active")),
    PolicySpec("manager", "sales", ("member",),
               ((GrantSpec("leads", "view", "team", "allow", ()),
                 GrantSpec("leads", "delete", "department", "allow", ()),
                 GrantSpec("leads", "view", "own", "deny", ())),),
               None, None, False,
               share=ShareSpec((("leads", "view", ()), ("leads", "delete", ())), "active")),
    # Text order: code points put "Mango" before "apple" and "Zoë" after "zoe", a
    # language collation does not; on shared records too.
    PolicySpec("member", None, (),
               ((GrantSpec("leads", "view", "all", "allow",
                           ({"field": "name", "op": "lt", "value": "apple"},)),
                 GrantSpec("leads", "view", "all", "deny",
                           ({"field": "name", "op": "gt", "value": "zoe"},)),
                 GrantSpec("leads", "edit", "all", "allow",
                           ({"field": "name", "op": "gt", "value": "Mango"},))),),
               None, None, False,
               share=ShareSpec((("leads", "view", ({"field": "name", "op": "lt",
                                                    "value": "emile"},)),), "active")),
    # Values no column holds, stored past the service: the allow grants nothing,
    # the deny covers its whole scope.
    PolicySpec("manager", None, (),
               ((GrantSpec("deals", "view", "all", "allow",
                           ({"field": "amount", "op": "lt", "value": "1000.004"},)),
                 GrantSpec("clients", "view", "all", "allow", ()),
                 GrantSpec("clients", "view", "own", "deny",
                           ({"field": "id", "op": "gt", "value": 10**30},))),),
               None, None, True,
               share=ShareSpec((("deals", "view", ({"field": "amount", "op": "gt",
                                                    "value": "NaN"},)),
                                ("clients", "view", ())), "active")),
    # A department's role under a weekday window and a network, inside then outside.
    *(PolicySpec("member", "sales", (), ((GrantSpec("leads", "view", "all", "allow", ()),
                                          GrantSpec("deals", "edit", "own", "allow", ())),),
                 None, None, True,
                 gate=GateSpec("department", ("mon", "tue", "wed", "thu", "fri"), (9, 18),
                               ("10.0.0.0/8",), "Europe/Paris", now, "10.1.2.3"))
      for now in (dt.datetime(2026, 1, 5, 8, 30), dt.datetime(2026, 1, 5, 17, 0))),
]


def run_property(app: Flask, world: SimpleNamespace, max_examples: int) -> tuple[int, int]:
    """Check ``max_examples`` random policies (and :data:`EXPLICIT`); return
    (examples run, disagreements found). Hypothesis stops at the first
    disagreement and reports it shrunk, so the count is 0 or 1."""
    vary_records(world)
    ids = {"users": [u.id for u in world.users.values()],
           "clients": [c.id for c in world.clients.values()]}
    examples = 0

    @settings(max_examples=max_examples, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(spec=policy_specs(ids))
    def check(spec: PolicySpec) -> None:
        nonlocal examples
        examples += 1
        try:
            membership = apply(world, spec)
            access = fresh_access(app, membership, spec.unowned_visible, spec.gate)
            if spec.gate is not None:
                assert ("Generated 0" in access.roles) == spec.gate.holds(), access.role_notes
            with rbac.system():
                records = {res: list(db.session.scalars(sa.select(model)))
                           for res, model in MODELS.items()}
            assert disagreements(access, records) == {}
        finally:
            db.session.rollback()

    for spec in EXPLICIT:
        check = example(spec=spec)(check)
    check()  # raises, with the shrunk example, on a disagreement
    return examples, 0


def test_policy_and_filter_agree(app: Flask, world: SimpleNamespace,
                                 record_property: Any) -> None:
    examples, _ = run_property(app, world, MAX_EXAMPLES)
    record_property("hypothesis_examples", examples)
    print(f"policy/filter agreement: {examples} examples")
    assert examples >= MAX_EXAMPLES
