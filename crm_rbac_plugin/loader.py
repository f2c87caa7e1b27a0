"""Read a member's policy from the database: their membership row, and their
:class:`~.policy.Access` built from it.

Resolution reads every policy row of the member in one round trip
(assigned roles with their ancestors, their grants and field rules, team
and department members, sharing agreements: see :mod:`.policy_rows`), one
statement built once with bind parameters, and turns them into an Access
by :func:`.resolve.build_access`. A request has the membership's row
already, read with its user; a caller with the membership's id alone and
nothing cached reads the row in the same statement
(:func:`load_access_by_id`).
The result is cached per request on ``g`` and across requests in
:class:`~.access_cache.AccessCache`, keyed by membership and checked
against the workspace's ``policy_version``: every
change to a role, grant, assignment, membership or department bumps that
number in the same transaction (see :mod:`.guard`), so any process notices
on its next request that its copy is stale. Time-limited role assignments
set ``valid_until`` so an entry also expires on its own.
"""

from __future__ import annotations

import collections
import datetime as dt
import functools
from collections.abc import Iterable
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from . import conditions, policy_rows
from .access_cache import has_uncommitted_policy
from .models import Models, utcnow
from .policy import Access, Rule, Share
from .registry import Registry
from .resolve import (
    MEMBER_FIELDS,
    WORKSPACE_FIELDS,
    MembershipRow,
    build_access,
    combine_field_rules,
    plan_modules,
)

#: Execution option that makes the query filter leave a statement alone.
BYPASS = {"rbac_bypass": True}


def _membership_columns(models: Models) -> list[Any]:
    """The columns of a :class:`MembershipRow`, in its order."""
    return ([getattr(models.Membership, f) for f in MEMBER_FIELDS]
            + [getattr(models.Workspace, f) for f in WORKSPACE_FIELDS])


@functools.lru_cache(maxsize=32)
def _statements(models: Models) -> dict[str, Any]:
    """Build the statements that find a membership, and those that read one kind of
    policy row for a question the resolution statement does not answer (see
    :class:`SQLPolicySource`), once per set of models, with bind parameters.

    A statement object memoises its SQL cache key, so running the same one
    with new values skips building it and walking it for the key, which cost
    as much as the round trips of a cold resolution. Keyed by the (frozen,
    hashable) ``Models`` of one extension instance.
    """
    M, W = models.Membership, models.Workspace
    Grant, FieldRule = models.Grant, models.FieldRule
    A = models.ManagerAssignment
    mid, ws = sa.bindparam("mid"), sa.bindparam("ws")
    # A deleted workspace (waiting for its purge) has no members: nobody acts there.
    member = (sa.select(*_membership_columns(models)).join(W, W.id == M.workspace_id)
              .where(W.deleted_at.is_(None)))
    role_ids = sa.bindparam("role_ids", expanding=True)
    # Team and department members in one round trip; ``dept`` NULL matches nobody.
    colleagues = sa.union_all(
        sa.select(M.user_id, sa.literal("team").label("kind"))
        .join(A, A.member_id == M.id).where(A.manager_id == mid),
        sa.select(M.user_id, sa.literal("department").label("kind"))
        .where(M.workspace_id == ws, M.department_id == sa.bindparam("dept", type_=sa.Integer)))
    return {
        "member_by_id": member.where(M.id == sa.bindparam("membership_id")),
        "member_by_user": member.where(M.user_id == sa.bindparam("user_id"),
                                       M.workspace_id == sa.bindparam("workspace_id")),
        "grants": sa.select(Grant.id, Grant.role_id, Grant.resource, Grant.action, Grant.scope,
                            Grant.effect, Grant.condition)
                  .where(Grant.role_id.in_(role_ids)).order_by(Grant.id),
        "field_rules": sa.select(FieldRule.role_id, FieldRule.resource, FieldRule.field,
                                 FieldRule.mode).where(FieldRule.role_id.in_(role_ids)),
        "colleagues": colleagues,
        "shares": _shares_statement(models),
    }


def _shares_statement(models: Models) -> Any:
    """The agreements in force towards ``:ws`` at ``:now``, one row per shared permission."""
    SA, SP, W = models.SharingAgreement, models.SharingPermission, models.Workspace
    now = sa.bindparam("now", type_=SA.expires_at.type)
    return (sa.select(SA.id, SA.granting_workspace_id, SA.expires_at, W.name, W.plan,
                      SP.resource, SP.action, SP.condition)
            .join(W, W.id == SA.granting_workspace_id)
            .join(SP, SP.agreement_id == SA.id)
            .where(SA.receiving_workspace_id == sa.bindparam("ws"), SA.status == "active",
                   sa.or_(SA.expires_at.is_(None), SA.expires_at > now))
            .order_by(SA.id, SP.id))


#: Named tuples by column names, for :func:`_plain_rows`.
_ROW_TYPES: dict[tuple[str, ...], type] = {}


def _plain_rows(result: Any) -> list[Any]:
    """The result's rows as named tuples.

    :func:`.resolve.build_access` reads its rows by attribute, and an
    attribute of a SQLAlchemy ``Row`` costs about 600 ns (a named tuple's,
    about 30): 80 grants read nine times each cost more than their query.
    """
    kind, new = _row_type(tuple(result.keys())), tuple.__new__
    return [new(kind, row) for row in result.all()]


def _row_type(keys: tuple[str, ...]) -> type:
    """The named tuple type of these column names, made once."""
    kind = _ROW_TYPES.get(keys)
    if kind is None:
        kind = _ROW_TYPES.setdefault(keys, collections.namedtuple("PolicyRow", keys))  # type: ignore[misc]
    return kind


@functools.lru_cache(maxsize=32)
def _user_key(models: Models) -> Any:
    """The conversion of a user key read from JSON to the key's Python type (a
    UUID comes as text), or None where JSON gives it as it is (integers, text)."""
    python_type = _python_type(models.Membership.user_id)
    if python_type in (None, int, str):
        return None
    return functools.partial(_convert, python_type)


class SQLPolicySource:
    """The live policy of one membership at one instant, read in one round trip.

    :meth:`roles` runs :func:`.policy_rows.resolution_statement` on the
    session's connection after flushing the session's pending changes
    (:func:`_core_execute`), so the Access sees them as any query would,
    unless the caller ran it already and passes its ``rows``; the other
    methods answer from its rows. A question that the statement
    did not answer (other roles, another member or instant, an Owner's
    colleagues) runs a statement of its own (see :func:`_statements`) as
    Core on the same connection: the ORM's execution adds nothing to a
    select of plain columns of the plugin's own tables but about a third
    of its cost.
    """

    def __init__(self, session: Session, models: Models, registry: Registry,
                 config: dict[str, Any], membership_row: MembershipRow,
                 now: dt.datetime, rows: list[Any] | None = None) -> None:
        self.session, self.models = session, models
        self.registry, self.config = registry, config
        self.member, self.now = membership_row, now
        self.statements = _statements(models)
        self._read = rows  # the resolution statement's rows, when the caller ran it
        self._rows: policy_rows.PolicyRows | None = None
        self._role_ids: frozenset[int] = frozenset()

    def _run(self, name: str, params: dict[str, Any]) -> Any:
        return self.session.connection(bind_arguments={"clause": self.statements[name]}
                                       ).execute(self.statements[name], params)

    def roles(self, membership_id: int, workspace_id: int) -> Iterable[Any]:
        m = self.member
        if (membership_id, workspace_id) != (m.id, m.workspace_id):
            raise ValueError("this source reads the policy of its own membership only")
        dialect = self.session.get_bind().dialect
        rows = self._read
        if rows is None:
            stmt = policy_rows.resolution_statement(self.models, dialect.name == "postgresql")
            rows = _core_execute(self.session, stmt, {"mid": m.id, "ws": m.workspace_id,
                                                      "dept": m.department_id,
                                                      "now": self.now}).all()
        self._rows = policy_rows.split(rows, m.workspace_id, policy_rows.json_loader(dialect),
                                       _user_key(self.models))
        self._role_ids = frozenset(r.id for r in self._rows.roles)
        return self._rows.roles

    def _covers(self, role_ids: list[int]) -> bool:
        return self._rows is not None and self._role_ids.issuperset(role_ids)

    def grants(self, role_ids: list[int]) -> Iterable[Any]:
        if self._rows is None or not self._covers(role_ids):
            return _plain_rows(self._run("grants", {"role_ids": role_ids}))
        wanted = set(role_ids)
        return [g for g in self._rows.grants if g.role_id in wanted]

    def field_rules(self, role_ids: list[int]) -> Iterable[Any]:
        if self._rows is None or not self._covers(role_ids):
            return _plain_rows(self._run("field_rules", {"role_ids": role_ids}))
        wanted = set(role_ids)
        return [r for r in self._rows.field_rules if r.role_id in wanted]

    def colleagues(self, membership_id: int, workspace_id: int,
                   department_id: int | None) -> Iterable[tuple[int, str]]:
        m, rows = self.member, self._rows
        if (rows is not None and rows.colleagues is not None
                and (membership_id, workspace_id, department_id)
                == (m.id, m.workspace_id, m.department_id)):
            return rows.colleagues
        return self._run("colleagues", {"mid": membership_id, "ws": workspace_id,
                                        "dept": department_id}).all()

    def shares(self, workspace_id: int, now: dt.datetime
               ) -> tuple[tuple[Share, ...], dt.datetime | None]:
        if self._rows is not None and (workspace_id, now) == (self.member.workspace_id,
                                                              self.now):
            found: list[Any] = self._rows.shares
        else:
            found = self._run("shares", {"ws": workspace_id, "now": now}).all()
        return _shares(found, self.registry, self.config)


def load_access(session: Session, models: Models, registry: Registry, config: dict[str, Any],
                membership_row: MembershipRow, now: dt.datetime | None = None, *,
                address: str | None = None) -> Access:
    """Compute the effective access of one membership (a :class:`MembershipRow`)
    for a request from ``address`` (None: no request, outside every network)."""
    now = now or utcnow()
    source = SQLPolicySource(session, models, registry, config, membership_row, now)
    return build_access(source, registry, config, membership_row, now,
                        cacheable=not has_uncommitted_policy(session,
                                                              membership_row.workspace_id),
                        address=address)


def load_access_by_id(session: Session, models: Models, registry: Registry,
                      config: dict[str, Any], membership_id: Any, now: dt.datetime | None = None,
                      *, address: str | None = None) -> Access | None:
    """Compute the effective access of the membership ``membership_id`` as
    :func:`load_access` does, its row read in the same statement as its policy
    (None: no such membership, or its workspace is deleted)."""
    try:
        mid = _as_column_type(models.Membership.id, membership_id)
    except (TypeError, ValueError):
        return None  # an id that cannot be one ("abc" for an integer key): no such member
    now = now or utcnow()
    dialect = session.get_bind().dialect
    stmt = policy_rows.resolution_statement(models, dialect.name == "postgresql", by_id=True)
    rows = _core_execute(session, stmt, {"mid": mid, "now": now}).all()
    fields = policy_rows.member(rows, policy_rows.json_loader(dialect), _user_key(models))
    if fields is None:
        return None
    row = MembershipRow(mid, *fields)
    source = SQLPolicySource(session, models, registry, config, row, now, rows)
    return build_access(source, registry, config, row, now,
                        cacheable=not has_uncommitted_policy(session, row.workspace_id),
                        address=address)


def _shares(rows: list[Any], registry: Registry, config: dict[str, Any],
            ) -> tuple[tuple[Share, ...], dt.datetime | None]:
    """The sharing agreements in force towards a workspace, from the rows of
    its ``shares`` statement, and the earliest expiry among them, so that a
    cached Access stops being used the moment an agreement runs out."""
    by_agreement: dict[int, dict[str, Any]] = {}
    until: dt.datetime | None = None
    for row in rows:
        clauses = shared_clauses(registry, row.resource, row.condition)
        if clauses is None:
            continue
        entry = by_agreement.setdefault(row.id, {
            "workspace_id": row.granting_workspace_id, "name": row.name,
            "modules": plan_modules(config["RBAC_PLANS"], row.plan), "permissions": {}})
        entry["permissions"][(row.resource, row.action)] = clauses
        if row.expires_at is not None:
            until = row.expires_at if until is None else min(until, row.expires_at)
    shares = tuple(Share(agreement_id, e["workspace_id"], e["name"], e["permissions"],
                         e["modules"]) for agreement_id, e in by_agreement.items())
    return shares, until


def shared_clauses(registry: Registry, resource: str,
                   condition: Any) -> tuple[conditions.Clause, ...] | None:
    """The record condition of one stored sharing permission, or None if the
    permission no longer counts: a resource the host no longer registers, or
    one without records (only records are shared, never a workspace's settings)."""
    if resource not in registry:
        return None
    model = registry.get(resource).model
    return conditions.stored(model, condition) if model is not None else None


def field_security(session: Session, models: Models, roles: dict[int, Any],
                   assigned: set[int], rules: dict[tuple[str, str], list[Rule]],
                   ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Read the field rules of ``roles`` and combine them (:func:`combine_field_rules`)."""
    rows = session.execute(_statements(models)["field_rules"], {"role_ids": list(roles)},
                           execution_options=BYPASS)
    return combine_field_rules(rows, roles, assigned, rules)


def _core_execute(session: Session, stmt: Any, params: dict[str, Any]) -> Any:
    """Run ``stmt``, a select of plain columns, as Core on the session's connection.

    The ORM's execution of such a select costs more than a short statement
    itself (about 100 µs of 150 for the membership row on SQLite) and adds
    nothing but its autoflush: the session's pending changes are flushed
    first as the ORM would (not during a flush, not under ``no_autoflush``).
    The query filter never sees the statement; it carries ``BYPASS`` for
    any other listener.
    """
    real = session() if isinstance(session, scoped_session) else session
    real._autoflush()
    return real.connection(bind_arguments={"clause": stmt}).execute(stmt, params,
                                                                   execution_options=BYPASS)


def membership_row(session: Session, models: Models, *, user_id: Any = None,
                   workspace_id: Any = None, membership_id: Any = None) -> MembershipRow | None:
    """Fetch the one row a request needs to find (or validate) cached access."""
    M, statements = models.Membership, _statements(models)
    try:
        if membership_id is not None:
            stmt = statements["member_by_id"]
            params = {"membership_id": _as_column_type(M.id, membership_id)}
        else:
            stmt = statements["member_by_user"]
            params = {"user_id": _as_column_type(M.user_id, user_id),
                      "workspace_id": _as_column_type(M.workspace_id, workspace_id)}
    except (TypeError, ValueError):
        return None  # an id that cannot be one ("abc" for an integer key): no such member
    row = _core_execute(session, stmt, params).first()
    return MembershipRow(*row) if row is not None else None


def _as_column_type(column: Any, value: Any) -> Any:
    """Convert ``value`` to ``column``'s Python type.

    Flask-Login's ``get_id()`` (and a session value) may be a string. Compared
    with an integer column, SQLAlchemy binds a string as VARCHAR, and
    PostgreSQL refuses ``integer = character varying``: every logged-in request
    failed there, while SQLite compared happily.
    """
    return _convert(_python_type(column), value)


def _python_type(column: Any) -> type | None:
    try:
        return column.type.python_type  # type: ignore[no-any-return]
    except NotImplementedError:
        return None


def _convert(python_type: type | None, value: Any) -> Any:
    if python_type is None or value is None or isinstance(value, python_type):
        return value
    return python_type(value)


