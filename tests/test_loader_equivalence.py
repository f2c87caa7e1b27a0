"""A cold resolution reads the same policy as one plain query per kind of row.

:class:`.loader.SQLPolicySource` reads a member's roles, grants, field rules,
team and department members and sharing agreements in one statement
(:mod:`.policy_rows`). Here an independent source reads each of them with
plain ORM queries and walks the role ancestors in Python, and both are turned
into an Access by the same :func:`.resolve.build_access`: on random policies
(tests/test_agreement.py's, plus field rules, an Owner assignment in and out
of force and dated assignments) the two Access objects are equal, on SQLite
and PostgreSQL. The same holds of the statement that reads the membership's
row with its policy (:func:`.loader.load_access_by_id`). The statement
count of a cold resolution is pinned too.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from types import SimpleNamespace
from typing import Any

import sqlalchemy as sa
from flask import Flask
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from bench import sql as bench_sql
from crm_app.extensions import db
from crm_app.rbac_setup import rbac
from crm_rbac_plugin import Access, loader, policy_rows, workspaces
from crm_rbac_plugin.models import utcnow
from crm_rbac_plugin.resolve import build_access
from tests.test_agreement import EXPLICIT, PolicySpec, apply, policy_specs, vary_records

MAX_EXAMPLES = 40


class ReferenceSource:
    """The policy rows of :class:`.resolve.PolicySource`, one plain query each."""

    def __init__(self, registry: Any, config: dict[str, Any]) -> None:
        self.m, self.registry, self.config = rbac.models, registry, config

    def roles(self, membership_id: int, workspace_id: int) -> list[Any]:
        m = self.m
        member = db.session.get(m.Membership, membership_id)
        zone = db.session.get(m.Workspace, workspace_id).timezone
        own = list(db.session.scalars(sa.select(m.MemberRole)
                                      .where(m.MemberRole.membership_id == membership_id)))
        grouped = [] if member.department_id is None else list(db.session.scalars(
            sa.select(m.DepartmentRole)
            .where(m.DepartmentRole.department_id == member.department_id)))
        closure: dict[int, Any] = {}
        todo = [a.role_id for a in own] + [a.role_id for a in grouped]
        while todo:
            rid = todo.pop()
            if rid is None or rid in closure:
                continue
            closure[rid] = db.session.get(m.Role, rid)
            todo.append(closure[rid].parent_id)

        def row(role: Any, assignment: Any, via: str | None) -> SimpleNamespace:
            return SimpleNamespace(
                id=role.id, name=role.name, parent_id=role.parent_id, is_owner=role.is_owner,
                assigned=assignment.role_id if assignment is not None else None,
                starts_at=getattr(assignment, "starts_at", None),
                expires_at=getattr(assignment, "expires_at", None),
                condition=getattr(assignment, "access_condition", None),
                role_condition=role.access_condition, via=via, timezone=zone)

        rows = []
        for role in closure.values():
            if role.workspace_id != workspace_id:
                continue
            mine = [a for a in own if a.role_id == role.id]
            rows += [row(role, a, None) for a in mine] or [row(role, None, None)]
        for a in grouped:
            role = closure[a.role_id]
            if role.workspace_id == workspace_id:
                rows.append(row(role, a, a.department.name))
        return rows

    def grants(self, role_ids: list[int]) -> list[Any]:
        G = self.m.Grant
        return list(db.session.scalars(sa.select(G).where(G.role_id.in_(role_ids))
                                       .order_by(G.id)))

    def field_rules(self, role_ids: list[int]) -> list[Any]:
        F = self.m.FieldRule
        return list(db.session.scalars(sa.select(F).where(F.role_id.in_(role_ids))))

    def colleagues(self, membership_id: int, workspace_id: int,
                   department_id: int | None) -> list[tuple[Any, str]]:
        M, A = self.m.Membership, self.m.ManagerAssignment
        team = db.session.scalars(sa.select(M.user_id).join(A, A.member_id == M.id)
                                  .where(A.manager_id == membership_id))
        dept = [] if department_id is None else db.session.scalars(sa.select(M.user_id).where(
            M.workspace_id == workspace_id, M.department_id == department_id))
        return [(u, "team") for u in team] + [(u, "department") for u in dept]

    def shares(self, workspace_id: int, now: dt.datetime) -> Any:
        SA = self.m.SharingAgreement
        rows = []
        for agreement in db.session.scalars(sa.select(SA).order_by(SA.id)):
            if (agreement.receiving_workspace_id != workspace_id or agreement.status != "active"
                    or (agreement.expires_at is not None and agreement.expires_at <= now)):
                continue
            granting = db.session.get(self.m.Workspace, agreement.granting_workspace_id)
            for p in sorted(agreement.permissions, key=lambda p: p.id):
                rows.append(SimpleNamespace(
                    id=agreement.id, granting_workspace_id=granting.id,
                    expires_at=agreement.expires_at, name=granting.name, plan=granting.plan,
                    resource=p.resource, action=p.action, condition=p.condition))
        return loader._shares(rows, self.registry, self.config)


def normalised(access: Access) -> Access:
    """The Access with its notes in one order: the statements return role rows
    in no particular order, and the notes follow the rows."""
    return dataclasses.replace(access, role_notes=tuple(sorted(access.role_notes)),
                               network_checks=tuple(sorted(access.network_checks)))


@dataclasses.dataclass(frozen=True)
class Extras:
    """What test_agreement's policies leave out: field rules on the generated
    roles (role index, resource, field, mode), an Owner assignment and dates on
    the first generated role's assignment ("past", "future", "later" or None)."""

    field_rules: tuple[tuple[int, str, str, str], ...] = ()
    owner: str | None = None
    dates: str | None = None


EXTRAS = st.builds(
    Extras,
    field_rules=st.lists(st.tuples(st.integers(0, 1), st.sampled_from(["leads", "deals"]),
                                   st.sampled_from(["name", "source", "amount", "email"]),
                                   st.sampled_from(["hidden", "readonly"])),
                         max_size=4, unique_by=lambda f: f[:3]).map(tuple),
    owner=st.sampled_from([None, None, "now", "past", "future"]),
    dates=st.sampled_from([None, "past", "future", "later"]))

NOW = utcnow()
DATES = {"past": (NOW - dt.timedelta(days=3), NOW - dt.timedelta(days=1)),
         "future": (NOW + dt.timedelta(days=1), None), "later": (None, NOW + dt.timedelta(days=2)),
         "now": (None, None)}


def apply_extras(w: SimpleNamespace, membership: Any, extras: Extras) -> None:
    m = rbac.models
    generated = {r.name: r for r in db.session.scalars(
        sa.select(m.Role).where(m.Role.workspace_id == w.ws.id, m.Role.name.like("Generated %")))}
    for index, resource, field, mode in extras.field_rules:
        role = generated.get(f"Generated {index}")
        if role is not None:
            db.session.add(m.FieldRule(role=role, resource=resource, field=field, mode=mode))
    if extras.dates is not None:
        first = next((a for a in membership.member_roles
                      if a.role.name == "Generated 0"), None)
        if first is not None:
            first.starts_at, first.expires_at = DATES[extras.dates]
    if extras.owner is not None:
        starts, expires = DATES[extras.owner]
        workspaces.assign_role(rbac, membership, "owner", starts_at=starts, expires_at=expires)
    db.session.flush()


def resolved(app: Flask, membership: Any, spec: PolicySpec) -> tuple[Access, Access, Access]:
    """The Access of ``membership`` from its row, from its id alone, and from
    the reference source."""
    row = loader.membership_row(db.session, rbac.models, membership_id=membership.id)
    config = {**app.config, "RBAC_UNOWNED_VISIBLE": spec.unowned_visible}
    now = spec.gate.now if spec.gate is not None else NOW
    address = spec.gate.address if spec.gate is not None else None
    new = loader.load_access(db.session, rbac.models, rbac.registry, config, row, now,
                             address=address)
    by_id = loader.load_access_by_id(db.session, rbac.models, rbac.registry, config,
                                     membership.id, now, address=address)
    reference = build_access(ReferenceSource(rbac.registry, config), rbac.registry, config, row,
                             now, address=address)
    assert by_id is not None
    return new, by_id, reference


def test_one_statement_reads_what_plain_queries_read(app: Flask,
                                                      world: SimpleNamespace) -> None:
    vary_records(world)
    ids = {"users": [u.id for u in world.users.values()],
           "clients": [c.id for c in world.clients.values()]}
    examples = 0

    @settings(max_examples=MAX_EXAMPLES, deadline=None, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture,
                                     HealthCheck.too_slow])
    @given(spec=policy_specs(ids), extras=EXTRAS)
    def check(spec: PolicySpec, extras: Extras) -> None:
        nonlocal examples
        examples += 1
        try:
            membership = apply(world, spec)
            apply_extras(world, membership, extras)
            new, by_id, reference = resolved(app, membership, spec)
            assert normalised(new) == normalised(reference)
            assert normalised(by_id) == normalised(reference)
        finally:
            db.session.rollback()

    for spec in EXPLICIT:
        check = example(spec=spec, extras=Extras())(check)
    first = EXPLICIT[4]  # a member with a team, a department and a shared agreement
    for owner in ("now", "past", "future"):
        check = example(spec=first, extras=Extras(owner=owner))(check)
    check = example(spec=first, extras=Extras(((0, "leads", "source", "hidden"),
                                               (0, "clients", "name", "readonly")),
                                              dates="later"))(check)
    check()
    assert examples >= MAX_EXAMPLES


def cold_statements(membership_id: int) -> list[str]:
    rbac.state.cache.clear()
    with bench_sql.capture(db.engine) as seen:
        assert rbac.access_for(membership_id) is not None
    return [sql for sql, _ in seen]


def test_a_cold_resolution_by_id_runs_one_statement(app: Flask, world: SimpleNamespace) -> None:
    """With nothing cached, the membership row and every policy row come in one
    statement; an Owner's too."""
    db.session.commit()
    for key in ("manager", "member", "owner"):
        assert len(cold_statements(world.members[key].id)) == 1, key


def test_a_cached_access_is_validated_by_the_membership_row(
        app: Flask, world: SimpleNamespace) -> None:
    """A cached Access costs the membership row alone while its workspace's
    policy version holds; a stale one, the row and then the policy."""
    db.session.commit()
    member = world.members["member"]
    mid = member.id
    cold_statements(mid)
    with bench_sql.capture(db.engine) as seen:
        assert rbac.access_for(mid) is not None
    assert len(seen) == 1
    workspaces.assign_role(rbac, member, "viewer")
    db.session.commit()
    with bench_sql.capture(db.engine) as seen:
        access = rbac.access_for(mid)
    assert len(seen) == 2 and access is not None and "Viewer" in access.roles


def test_no_access_by_id_for_a_missing_member_or_a_deleted_workspace(
        app: Flask, world: SimpleNamespace) -> None:
    """The one statement finds no membership for an id that names none or cannot
    be one, nor for a member of a deleted workspace; nothing is cached."""
    db.session.commit()
    member = world.members["member"]
    rbac.state.cache.clear()
    for missing in (10**9, "abc", None):
        assert rbac.access_for(missing) is None
    try:
        world.ws.deleted_at = utcnow()
        db.session.flush()
        assert rbac.access_for(member.id) is None
        assert not rbac.state.cache.holds(member.id)
    finally:
        db.session.rollback()
    assert rbac.access_for(member.id) is not None


def test_an_owner_role_out_of_force_reads_the_colleagues_apart(
        app: Flask, world: SimpleNamespace) -> None:
    """The statement leaves out the team and department of a member holding an
    Owner role; when that role is not in force the members are read apart."""
    manager = world.members["manager"]
    workspaces.assign_role(rbac, manager, "owner", starts_at=NOW + dt.timedelta(days=1))
    db.session.commit()
    assert len(cold_statements(manager.id)) == 2
    access = rbac.access_for(manager.id)
    assert not access.is_owner and access.team_user_ids and access.department_user_ids


def test_the_statement_reads_one_row_of_grants_and_one_of_colleagues(
        app: Flask, world: SimpleNamespace) -> None:
    """The grants and the team and department members come as JSON lists, one
    row each, whatever their number: a row per grant or member cost the
    driver and SQLAlchemy more than the statement itself."""
    db.session.commit()
    manager = world.members["manager"]
    row = loader.membership_row(db.session, rbac.models, membership_id=manager.id)
    assert row is not None
    dialect = db.session.get_bind().dialect
    stmt = policy_rows.resolution_statement(rbac.models, dialect.name == "postgresql")
    rows = db.session.execute(stmt, {"mid": row.id, "ws": row.workspace_id,
                                     "dept": row.department_id, "now": utcnow()}).all()
    kinds = [r[0] for r in rows]
    assert kinds.count(policy_rows.GRANT) == 1 and kinds.count(policy_rows.COLLEAGUE) == 1
    read = policy_rows.split(rows, row.workspace_id, policy_rows.json_loader(dialect))
    assert len(read.grants) > 1 and read.grants == sorted(read.grants, key=lambda g: g.id)
    access = rbac.access_for(manager.id)
    assert access.team_user_ids == {world.users["member"].id}
    assert len(access.department_user_ids) > 1


def test_the_grants_row_holds_a_list_per_column() -> None:
    """The grants' JSON value is a list per column of :class:`.policy_rows.GrantRow`
    (an aggregate per column costs PostgreSQL half as much as a
    ``json_build_array`` per grant); :func:`.policy_rows.split` turns it into
    the grants in id order, from PostgreSQL's decoded lists (NULL lists: no
    grants) as from SQLite's JSON text."""
    def grants_row(value: Any) -> tuple[Any, ...]:
        return (policy_rows.GRANT, *[None] * 11, value, None)

    columns = [[7, 3], [1, 2], ["leads", "deals"], ["view", "edit"], ["all", "own"],
               ["allow", "deny"], [None, {"fields": []}]]
    expected = [policy_rows.GrantRow(3, 2, "deals", "edit", "own", "deny", {"fields": []}),
                policy_rows.GrantRow(7, 1, "leads", "view", "all", "allow", None)]
    assert policy_rows.split([grants_row(columns)], 1, None).grants == expected
    assert policy_rows.split([grants_row(json.dumps(columns))], 1, json.loads).grants == expected
    assert policy_rows.split([grants_row([None] * 7)], 1, None).grants == []
    assert policy_rows.split([grants_row("[[],[],[],[],[],[],[]]")], 1, json.loads).grants == []


def test_the_statement_is_short_enough_for_psycopg_to_keep_its_conversion(
        app: Flask) -> None:
    """psycopg converts a query's ``%(name)s`` placeholders to PostgreSQL's ``$n``
    once for a text of at most 4,096 characters, and at every execution for
    a longer one. The statement a request runs stays under it; the one that
    also reads the membership's row (a job's, the CLI's) is longer, and its
    conversion costs about 16 µs of a cold resolution by id."""
    from psycopg import _queries
    from sqlalchemy.dialects.postgresql import psycopg

    stmt = policy_rows.resolution_statement(rbac.models, True)
    sql = str(stmt.compile(dialect=psycopg.dialect()))
    assert len(sql.encode()) <= _queries.MAX_CACHED_STATEMENT_LENGTH


def test_a_cold_resolution_sees_the_sessions_pending_changes(
        app: Flask, world: SimpleNamespace) -> None:
    """The resolution runs as Core after the session's autoflush, so an Access
    resolved before a commit sees the session's unflushed changes, as any
    ORM query would."""
    db.session.commit()
    member = world.members["member"]
    try:
        member.status = "inactive"
        workspaces.assign_role(rbac, member, "viewer")
        rbac.state.cache.clear()
        access = rbac.access_for(member.id)
        assert access is not None and not access.active
        assert "Viewer" in access.roles
    finally:
        db.session.rollback()
    rbac.state.cache.clear()
    access = rbac.access_for(member.id)
    assert access is not None and access.active and "Viewer" not in access.roles
