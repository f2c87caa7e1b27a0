"""The one statement that reads a member's policy rows for a cold resolution.

A cold resolution needs the member's roles with their ancestors, the grants
and field rules of those roles, their team and department members, and the
sharing agreements towards their workspace. A statement of its own for
each costs a round trip and SQLAlchemy's work per statement, most of a
resolution's time on PostgreSQL; so all of them come in one statement, a
``UNION ALL`` of one branch per kind of row, tagged by the kind in its
first column.

Every branch fills the same wide row: a slot per column type (integers,
strings, a flag, two timestamps and two JSON values), so that the first
branch's column types convert the values of every branch. The grants come
as one JSON value in one row (a list per column of the grants), and the
team and department members as two JSON lists (a row each cost SQLite's
driver and SQLAlchemy more than the statement itself). The grants and
field rules are those of every role in the closure, a superset of the
roles in force that :func:`.resolve.build_access` asks for: the caller
keeps the rows of the roles it names.

The team and department members are left out when an Owner role is among
the member's roles (an Owner's access needs none, and a department may be
large): :func:`split` reports whether they were read.

A caller that knows the membership's id alone (a job, the CLI, view-as)
and has no cached Access to validate asks for the statement ``by_id``: the
membership's row comes as one more branch (:func:`member`), and its
workspace and department are read from it inside the statement, so that
a cold resolution by id is one round trip, not two.
"""

from __future__ import annotations

import datetime as dt
import functools
from collections.abc import Callable
from itertools import repeat
from operator import itemgetter
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.functions import FunctionElement

from .models import Models

#: The kinds of row, the statement's first column.
ROLE, GRANT, FIELD_RULE, COLLEAGUE, SHARE, MEMBER = range(6)


class RoleRow(NamedTuple):
    """An assignment, or an ancestor only (``assigned`` None): see :meth:`.resolve.PolicySource.roles`."""

    id: int
    name: str
    parent_id: int | None
    is_owner: bool
    assigned: int | None
    starts_at: dt.datetime | None
    expires_at: dt.datetime | None
    condition: Any
    role_condition: Any
    via: str | None
    timezone: str | None
    sign_in: bool = True
    api_access: bool = True


class GrantRow(NamedTuple):
    id: int
    role_id: int
    resource: str
    action: str
    scope: str
    effect: str
    condition: Any


class FieldRuleRow(NamedTuple):
    role_id: int
    resource: str
    field: str
    mode: str


class ShareRow(NamedTuple):
    """One permission of an agreement in force, with its granting workspace."""

    id: int
    granting_workspace_id: int
    expires_at: dt.datetime | None
    name: str
    plan: str
    resource: str
    action: str
    condition: Any


# The wide row: kind, i1, i2, i3, i4, s1, s2, s3, s4, b1, d1, d2, j1, j2, b2, b3.
# Where each kind keeps its fields, in its named tuple's order.
_ROLE = itemgetter(1, 5, 2, 9, 3, 10, 11, 12, 13, 6, 7, 14, 15)
_ROLE_WORKSPACE = 4
_GRANTS = 12  # a JSON list of GrantRow's columns, each the list of the grants' values
_FIELD_RULE = itemgetter(2, 5, 6, 7)
_COLLEAGUE = 12  # two JSON lists of user keys: the team's, then the department's
_SHARE = itemgetter(1, 2, 10, 5, 6, 7, 8, 12)
_SHARE_ORDER = itemgetter(1, 3)  # agreement id, permission id
_MEMBER_USER = 12  # a JSON list of one value: the user key


class PolicyRows(NamedTuple):
    """The rows of one member's resolution statement, by kind, each in its order."""

    roles: list[RoleRow]
    grants: list[GrantRow]  # by id
    field_rules: list[FieldRuleRow]
    colleagues: list[tuple[Any, str]] | None  # None: not read (an Owner role is held)
    shares: list[ShareRow]  # by agreement, then permission


@functools.lru_cache(maxsize=8)
def json_loader(dialect: Any) -> Callable[[Any], Any] | None:
    """The dialect's conversion of a JSON value as the driver returns it (None: none)."""
    return sa.JSON().dialect_impl(dialect).result_processor(dialect, None)  # type: ignore[no-any-return]


def _decoded(values: tuple[Any, ...], slots: tuple[int, ...], load: Callable[[Any], Any] | None,
             ) -> tuple[Any, ...]:
    """``values`` with the JSON values at ``slots`` converted by ``load``."""
    if load is None or all(values[i] is None for i in slots):
        return values
    out = list(values)
    for i in slots:
        if out[i] is not None:
            out[i] = load(out[i])
    return tuple(out)


def _user_keys(raw: Any, load: Callable[[Any], Any] | None,
               user_key: Callable[[Any], Any] | None) -> list[Any]:
    """The user keys of a JSON array (NULL: none); ``user_key`` gives a key read
    from JSON the key's Python type (None: as read)."""
    keys = (load(raw) if load is not None else raw) if raw is not None else None
    if not keys:
        return []
    return keys if user_key is None else list(map(user_key, keys))


def _colleagues(row: Any, load: Callable[[Any], Any] | None,
                user_key: Callable[[Any], Any] | None) -> list[tuple[Any, str]]:
    """The team and department members of the colleagues' row, each list a JSON
    array of user keys (NULL or ``[]``: none), as ``(user key, kind)``."""
    out: list[tuple[Any, str]] = []
    for raw, kind in ((row[_COLLEAGUE], "team"), (row[_COLLEAGUE + 1], "department")):
        out += zip(_user_keys(raw, load, user_key), repeat(kind))
    return out


def split(rows: list[Any], workspace_id: int, load_json: Callable[[Any], Any] | None,
          user_key: Callable[[Any], Any] | None = None) -> PolicyRows:
    """Sort the statement's rows into their kinds (roles keep the statement's order).

    Only the roles of ``workspace_id`` count. The team and department
    members were read unless a role row is an Owner's, of any workspace:
    the statement's condition, checked on the same rows. The statement
    leaves its JSON values as the driver returns them (SQLAlchemy would
    convert both JSON slots of every row):
    ``load_json`` (see :func:`json_loader`) converts the conditions there are
    and the colleagues' lists, whose keys ``user_key`` converts.
    """
    new = tuple.__new__
    roles: list[RoleRow] = []
    grants: list[Any] = []
    field_rules: list[FieldRuleRow] = []
    colleagues: list[tuple[Any, str]] = []
    shares: list[tuple[Any, ...]] = []
    owner_row = False
    for row in rows:
        kind = row[0]
        if kind == GRANT:
            raw = row[_GRANTS]
            columns = load_json(raw) if load_json is not None and raw is not None else raw
            if columns and columns[0]:  # PostgreSQL's json_agg of no grants is NULL
                grants = list(zip(*columns, strict=True))
        elif kind == ROLE:
            role = new(RoleRow, _decoded(_ROLE(row), (7, 8), load_json))
            owner_row = owner_row or role.is_owner
            if row[_ROLE_WORKSPACE] == workspace_id:
                roles.append(role)
        elif kind == FIELD_RULE:
            field_rules.append(new(FieldRuleRow, _FIELD_RULE(row)))
        elif kind == COLLEAGUE:
            colleagues = _colleagues(row, load_json, user_key)
        elif kind == SHARE:
            shares.append(row)
    grants.sort(key=itemgetter(0))
    shares.sort(key=_SHARE_ORDER)
    return PolicyRows(
        roles, [new(GrantRow, g) for g in grants],
        field_rules, None if owner_row else colleagues,
        [new(ShareRow, _decoded(_SHARE(s), (7,), load_json)) for s in shares])


def member(rows: list[Any], load_json: Callable[[Any], Any] | None,
           user_key: Callable[[Any], Any] | None = None) -> tuple[Any, ...] | None:
    """The membership's fields of a ``by_id`` statement's rows, in
    :class:`~.resolve.MembershipRow`'s order after its id, or None: no such
    membership, or its workspace is deleted."""
    for row in rows:
        if row[0] == MEMBER:
            (user,) = _user_keys(row[_MEMBER_USER], load_json, user_key)
            # workspace_id, user_id, status, department_id, visibility, plan, policy_version
            return row[1], user, row[5], row[2], row[6], row[7], row[3]
    return None


class json_list(FunctionElement[Any]):
    """The aggregate of a column's values into a JSON array: ``json_group_array``
    (SQLite), ``json_agg`` (PostgreSQL), ``json_arrayagg`` (MySQL)."""

    type = sa.JSON()
    name = "json_list"
    inherit_cache = True


@compiles(json_list)
def _compile_json_list(element: json_list, compiler: Any, **kw: Any) -> str:
    return f"json_group_array({compiler.process(element.clauses, **kw)})"


@compiles(json_list, "postgresql")
def _compile_json_agg(element: json_list, compiler: Any, **kw: Any) -> str:
    return f"json_agg({compiler.process(element.clauses, **kw)})"


@compiles(json_list, "mysql")
def _compile_json_arrayagg(element: json_list, compiler: Any, **kw: Any) -> str:
    return f"json_arrayagg({compiler.process(element.clauses, **kw)})"


class json_row(FunctionElement[Any]):
    """``json_array(...)``, spelt ``json_build_array`` on PostgreSQL."""

    type = sa.JSON()
    name = "json_row"
    inherit_cache = True


@compiles(json_row)
def _compile_json_row(element: json_row, compiler: Any, **kw: Any) -> str:
    return f"json_array({compiler.process(element.clauses, **kw)})"


@compiles(json_row, "postgresql")
def _compile_json_build_array(element: json_row, compiler: Any, **kw: Any) -> str:
    return f"json_build_array({compiler.process(element.clauses, **kw)})"


#: The type of the JSON slots in the first branch, whose types convert every
#: branch's values: none, so that :func:`split` converts only the conditions.
_AS_READ = sa.types.NullType()


class _Slots:
    """The NULLs of the wide row's unused slots.

    Only the first branch needs typed NULLs: SQLAlchemy converts every
    branch's values by the first branch's column types, and PostgreSQL
    resolves a ``UNION ALL`` left to right, so a bare ``NULL`` below a typed
    column takes that column's type. The string slots are bare even there:
    a string needs no conversion, and PostgreSQL gives a column of NULLs and
    strings the strings' type. Bare NULLs keep the statement's text
    under psycopg's 4,096 characters, the longest whose conversion to
    PostgreSQL's placeholders it caches (a longer one is parsed again at
    every execution).
    """

    def __init__(self) -> None:
        self.int = sa.cast(sa.null(), sa.Integer)
        self.bool = sa.cast(sa.null(), sa.Boolean)
        self.time = sa.cast(sa.null(), sa.DateTime)
        self.json = sa.cast(sa.null(), sa.JSON)
        self.null = sa.literal_column("NULL")

    def row(self, kind: int, *, i: tuple[Any, ...] = (), s: tuple[Any, ...] = (),
            b: tuple[Any, ...] = (), d: tuple[Any, ...] = (), j: tuple[Any, ...] = (),
            typed: bool = False) -> list[Any]:
        """The wide row's columns: the given values, NULLs for the rest (typed
        ones for the statement's first branch, ``typed``). The second and third
        booleans are the row's last columns, so the others keep their places."""
        def pad(values: tuple[Any, ...], size: int, null: Any) -> list[Any]:
            return list(values) + [null if typed else self.null] * (size - len(values))
        strings = list(s) + [self.null] * (4 - len(s))
        return [sa.literal_column(str(kind), sa.Integer), *pad(i, 4, self.int), *strings,
                *pad(b[:1], 1, self.bool), *pad(d, 2, self.time),
                *pad(j, 2, self.json), *pad(b[1:], 2, self.bool)]


def _closure(models: Models, mid: Any, dept: Any) -> Any:
    """The recursive CTE of the ids of the member's assigned roles (their own and
    their department's, ``dept``) and of all their ancestors (UNION, so a cycle
    ends). The parent is a correlated subquery, so that each step is a
    primary-key lookup: as a join, PostgreSQL hashes the whole role table at
    every step."""
    Role, MemberRole, DR = models.Role, models.MemberRole, models.DepartmentRole
    held = sa.union_all(
        sa.select(MemberRole.role_id.label("id")).where(MemberRole.membership_id == mid),
        sa.select(DR.role_id.label("id")).where(DR.department_id == dept)).subquery()
    closure = sa.select(held.c.id).cte("closure", recursive=True)
    parent = sa.select(Role.parent_id).where(Role.id == closure.c.id).scalar_subquery()
    return closure.union(sa.select(parent.label("id")).select_from(closure)
                         .where(closure.c.id.is_not(None)))


def _role_branches(models: Models, slots: _Slots, mid: Any, ws: Any,
                   in_closure: Any, dept: Any) -> list[Any]:
    """One row per assignment (the member's own, then their department's) and one per
    ancestor only; each with its condition, its role's workspace and the member's
    workspace's zone. The department's assignments hold by the closure's
    definition; their test is on the assignment's role column, so that the
    plan starts from the department's few assignments, not from a lookup of
    every role of the closure.

    The rows of roles of other workspaces are dropped by :func:`split`, not
    here: with ``workspace_id = :ws`` in the statement, PostgreSQL's generic
    plan of the prepared statement, which cannot tell how many roles a
    workspace has, reads every role of the workspace by that index instead
    of the few of the closure by primary key.
    """
    W, Role, MemberRole = models.Workspace, models.Role, models.MemberRole
    DR, Dept = models.DepartmentRole, models.Department
    zone = sa.select(W.timezone).where(W.id == ws).scalar_subquery()
    own = (sa.select(*slots.row(
        ROLE, i=(Role.id, Role.parent_id, MemberRole.role_id, Role.workspace_id),
        s=(Role.name, slots.null, zone), b=(Role.is_owner, Role.sign_in, Role.api_access),
        d=(MemberRole.starts_at, MemberRole.expires_at),
        # Short labels: the columns' own names would be repeated in the text.
        j=(sa.type_coerce(MemberRole.access_condition, _AS_READ).label("j1"),
           sa.type_coerce(Role.access_condition, _AS_READ).label("j2")), typed=True))
        .outerjoin(MemberRole, sa.and_(MemberRole.role_id == Role.id,
                                       MemberRole.membership_id == mid))
        .where(in_closure(Role.id)))
    via = sa.select(Dept.name).where(Dept.id == dept).scalar_subquery()
    grouped = (sa.select(*slots.row(
        ROLE, i=(Role.id, Role.parent_id, DR.role_id, Role.workspace_id), s=(Role.name, via, zone),
        b=(Role.is_owner, Role.sign_in, Role.api_access),
        j=(DR.access_condition, Role.access_condition)))
        .join(DR, DR.role_id == Role.id)
        .where(DR.department_id == dept, in_closure(DR.role_id)))
    return [own, grouped]


@functools.lru_cache(maxsize=32)
def resolution_statement(models: Models, postgresql: bool, by_id: bool = False) -> Any:
    """The statement of a member's policy rows, with the parameters ``mid`` (the
    membership), ``ws`` (its workspace), ``dept`` (its department, NULL matches
    nobody) and ``now``; built once per set of models and dialect, so that
    SQLAlchemy finds its compiled form by the statement's memoised cache key.

    ``by_id``: the parameters are ``mid`` and ``now`` alone, and the rows
    include the membership's own (see :func:`member`).
    """
    M, Role = models.Membership, models.Role
    Grant, FieldRule, A = models.Grant, models.FieldRule, models.ManagerAssignment
    mid = sa.bindparam("mid", type_=M.id.type)
    slots = _Slots()
    me = _member_cte(models, mid) if by_id else None
    ws, dept = _workspace_and_department(models, me)
    closure = _closure(models, mid, dept)
    closure_ids = sa.select(closure.c.id)

    def among(column: Any, ids: Any) -> Any:
        # PostgreSQL guesses a recursive CTE at ten times its first step (50
        # rows for 5 assigned roles), so ``id IN (closure)`` is a hash join
        # over every role of the workspace (tests/test_query_plans.py);
        # ``id = ANY(ARRAY(ids))`` is an index lookup per id, and a join
        # fewer to plan at every execution.
        if postgresql:
            return column == sa.any_(sa.func.array(ids.scalar_subquery()))
        return column.in_(ids)

    def in_closure(column: Any) -> Any:
        return among(column, closure_ids)
    owner_held = sa.exists().where(Role.is_owner, in_closure(Role.id))
    # Team and department members, each a JSON list in one row (a row per
    # member cost SQLite's driver and SQLAlchemy most of a resolution's time
    # in a department of 100); ``dept`` NULL matches nobody.
    team = (sa.select(json_list(M.user_id))
            .where(among(M.id, sa.select(A.member_id).where(A.manager_id == mid))).scalar_subquery())
    department = (sa.select(json_list(M.user_id))
                  .where(M.workspace_id == ws, M.department_id == dept).scalar_subquery())
    branches = [
        *_role_branches(models, slots, mid, ws, in_closure, dept),
        # The grants as one JSON value, a list per column: a row per grant costs
        # SQLite's driver and SQLAlchemy more than the statement itself, and a
        # json_build_array per grant (PostgreSQL looks up each argument's output
        # function at each call) a third of the statement's execution.
        sa.select(*slots.row(GRANT, j=(json_row(*(json_list(c) for c in (
            Grant.id, Grant.role_id, Grant.resource, Grant.action, Grant.scope, Grant.effect,
            Grant.condition if postgresql else sa.func.json(Grant.condition)))),)))
        .where(in_closure(Grant.role_id)),
        sa.select(*slots.row(FIELD_RULE, i=(slots.null, FieldRule.role_id),
                             s=(FieldRule.resource, FieldRule.field, FieldRule.mode)))
        .where(in_closure(FieldRule.role_id)),
        sa.select(*slots.row(COLLEAGUE, j=(team, department))).where(~owner_held),
        _share_branch(models, slots, ws),
    ]
    if me is not None:
        branches.append(sa.select(*slots.row(MEMBER, i=(me.c.ws, me.c.dept, me.c.policy_version),
                                             s=(me.c.status, me.c.visibility, me.c.plan),
                                             j=(me.c.u,))))
    return sa.union_all(*branches)


def _share_branch(models: Models, slots: _Slots, ws: Any) -> Any:
    """The agreements in force towards the workspace ``ws`` at ``:now``, one row per
    shared permission."""
    SA, SP, W = models.SharingAgreement, models.SharingPermission, models.Workspace
    now = sa.bindparam("now", type_=SA.expires_at.type)
    return (sa.select(*slots.row(SHARE, i=(SA.id, SA.granting_workspace_id, SP.id),
                                 s=(W.name, W.plan, SP.resource, SP.action),
                                 d=(SA.expires_at,), j=(SP.condition,)))
            .join(W, W.id == SA.granting_workspace_id).join(SP, SP.agreement_id == SA.id)
            .where(SA.receiving_workspace_id == ws, SA.status == "active",
                   sa.or_(SA.expires_at.is_(None), SA.expires_at > now)))


def _workspace_and_department(models: Models, me: Any) -> tuple[Any, Any]:
    """The member's workspace and department in the statement: the parameters
    ``ws`` and ``dept``, or their values in the CTE ``me`` of a ``by_id`` statement."""
    if me is not None:
        return sa.select(me.c.ws).scalar_subquery(), sa.select(me.c.dept).scalar_subquery()
    return sa.bindparam("ws", type_=models.Workspace.id.type), sa.bindparam("dept", type_=sa.Integer)


def _member_cte(models: Models, mid: Any) -> Any:
    """The CTE ``me`` of a ``by_id`` statement: the membership's workspace and
    department, which the other branches read in place of parameters, and the
    rest of its row. A deleted workspace (waiting for its purge) has no
    members: no row."""
    M, W = models.Membership, models.Workspace
    return (sa.select(M.workspace_id.label("ws"), M.department_id.label("dept"), M.status,
                      M.visibility, W.plan, W.policy_version, json_row(M.user_id).label("u"))
            .join(W, W.id == M.workspace_id).where(M.id == mid, W.deleted_at.is_(None))
            .cte("me"))


def holds_role_now(models: Models, role_test: Any, at: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL: the membership holds a role matching ``role_test`` (on ``models.Role``) at
    ``at``: an assignment of its own in force then, or one of its department's.

    An assignment that starts later or has ended gives nothing; a department's
    roles have no window.
    """
    M, MR, DR, R = models.Membership, models.MemberRole, models.DepartmentRole, models.Role
    own = (sa.select(MR.membership_id).join(R, R.id == MR.role_id)
           .where(role_test, sa.or_(MR.starts_at.is_(None), MR.starts_at <= at),
                  sa.or_(MR.expires_at.is_(None), MR.expires_at > at)))
    via_department = sa.select(DR.department_id).join(R, R.id == DR.role_id).where(role_test)
    return sa.or_(M.id.in_(own), M.department_id.in_(via_department))
