"""Build a member's :class:`~.policy.Access` from the database, and cache it.

Resolution costs a handful of indexed queries (membership, assignments, the
role inheritance chain, grants, team and department members). The result is
cached per request on ``g`` and across requests in :class:`AccessCache`,
keyed by membership and checked against the workspace's ``policy_version``:
every change to a role, grant, assignment, membership or department bumps
that number in the same transaction (see :mod:`.guard`), so any process
notices on its next request that its copy is stale. Time-limited role
assignments set ``valid_until`` so an entry also expires on its own.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, scoped_session

from . import conditions
from .models import Models, utcnow
from .policy import Access, Rule, Share
from .registry import Registry

#: Execution option that makes the query filter leave a statement alone.
BYPASS = {"rbac_bypass": True}


#: Modules every plan includes: Owners and Admins must always reach the
#: workspace's own settings, whatever the plan.
ALWAYS_IN_PLAN = frozenset({"administration"})


def plan_modules(plans: dict[str, Any], plan: str) -> frozenset[str] | None:
    """Return the modules a plan includes (None for all).

    An unknown plan includes only the administration module (fail closed).
    """
    modules = plans.get(plan, ())
    if modules == "*":
        return None
    return frozenset(modules) | ALWAYS_IN_PLAN


def _role_closure(session: Session, models: Models, role_ids: set[int],
                  workspace_id: int) -> dict[int, Any]:
    """Return the rows of ``role_ids`` and all their ancestors, cycle-safe."""
    Role = models.Role
    found: dict[int, Any] = {}
    todo = set(role_ids)
    while todo:
        rows = session.execute(
            sa.select(Role.id, Role.name, Role.parent_id, Role.is_owner)
            .where(Role.id.in_(todo), Role.workspace_id == workspace_id),
            execution_options=BYPASS,
        ).all()
        for row in rows:
            found[row.id] = row
        todo = {r.parent_id for r in rows if r.parent_id is not None} - set(found)
    return found


def load_access(session: Session, models: Models, registry: Registry, config: dict[str, Any],
                membership_row: Any, now: dt.datetime | None = None) -> Access:
    """Compute the effective access of one membership.

    ``membership_row`` carries ``id``, ``workspace_id``, ``user_id``,
    ``status``, ``department_id``, ``plan`` and ``policy_version``
    (see :func:`membership_row`).
    """
    now = now or utcnow()
    m = membership_row
    MemberRole, Grant, Membership = models.MemberRole, models.Grant, models.Membership
    valid_until: dt.datetime | None = None
    active_role_ids: set[int] = set()
    for role_id, starts, expires in session.execute(
        sa.select(MemberRole.role_id, MemberRole.starts_at, MemberRole.expires_at)
        .where(MemberRole.membership_id == m.id),
        execution_options=BYPASS,
    ):
        if starts is not None and starts > now:
            valid_until = starts if valid_until is None else min(valid_until, starts)
            continue
        if expires is not None:
            if expires <= now:
                continue
            valid_until = expires if valid_until is None else min(valid_until, expires)
        active_role_ids.add(role_id)

    roles = _role_closure(session, models, active_role_ids, m.workspace_id)
    names = {rid: row.name for rid, row in roles.items()}
    is_owner = any(row.is_owner for row in roles.values())

    rules: dict[tuple[str, str], list[Rule]] = {}
    if roles:
        for g in session.execute(
            sa.select(Grant.id, Grant.role_id, Grant.resource, Grant.action, Grant.scope,
                      Grant.effect, Grant.condition)
            .where(Grant.role_id.in_(list(roles)))
            .order_by(Grant.id),
            execution_options=BYPASS,
        ):
            if g.resource not in registry:
                continue  # a grant for a resource the host no longer registers
            res = registry.get(g.resource)
            clauses = conditions.validate(res.model, g.condition) if res.model else ()
            rules.setdefault((g.resource, g.action), []).append(
                Rule(g.effect, g.scope, clauses, names[g.role_id], g.id))

    hidden: dict[str, frozenset[str]] = {}
    readonly: dict[str, frozenset[str]] = {}
    if roles and not is_owner:
        hidden, readonly = field_security(session, models, roles, active_role_ids, rules)

    team: frozenset[int] = frozenset()
    dept_users: frozenset[int] = frozenset()
    if not is_owner:
        A = models.ManagerAssignment
        team = frozenset(session.scalars(
            sa.select(Membership.user_id).join(A, A.member_id == Membership.id)
            .where(A.manager_id == m.id),
            execution_options=BYPASS,
        ))
        if m.department_id is not None:
            dept_users = frozenset(session.scalars(
                sa.select(Membership.user_id).where(
                    Membership.workspace_id == m.workspace_id,
                    Membership.department_id == m.department_id),
                execution_options=BYPASS,
            ))
    shares, shares_until = load_shares(session, models, registry, config, m.workspace_id, now)
    if shares_until is not None:
        valid_until = shares_until if valid_until is None else min(valid_until, shares_until)
    return Access(
        workspace_id=m.workspace_id,
        user_id=m.user_id,
        membership_id=m.id,
        active=m.status == "active",
        is_owner=is_owner,
        roles=tuple(sorted(names.values())),
        modules=plan_modules(config["RBAC_PLANS"], m.plan),
        team_user_ids=team,
        department_id=m.department_id,
        department_user_ids=dept_users,
        rules={k: tuple(v) for k, v in rules.items()},
        unowned_visible=config["RBAC_UNOWNED_VISIBLE"],
        policy_version=m.policy_version,
        valid_until=valid_until,
        cacheable=not _has_uncommitted_policy(session, m.workspace_id),
        visibility=m.visibility,
        hidden_fields=hidden,
        readonly_fields=readonly,
        shares=shares,
    )


def load_shares(session: Session, models: Models, registry: Registry, config: dict[str, Any],
                workspace_id: int, now: dt.datetime,
                ) -> tuple[tuple[Share, ...], dt.datetime | None]:
    """Return the sharing agreements in force towards ``workspace_id`` (one query).

    Also returns the earliest expiry among them, so that a cached Access
    stops being used the moment an agreement runs out.
    """
    SA, SP, W = models.SharingAgreement, models.SharingPermission, models.Workspace
    rows = session.execute(
        sa.select(SA.id, SA.granting_workspace_id, SA.expires_at, W.name, W.plan,
                  SP.resource, SP.action, SP.condition)
        .join(W, W.id == SA.granting_workspace_id)
        .join(SP, SP.agreement_id == SA.id)
        .where(SA.receiving_workspace_id == workspace_id, SA.status == "active",
               sa.or_(SA.expires_at.is_(None), SA.expires_at > now))
        .order_by(SA.id, SP.id),
        execution_options=BYPASS,
    ).all()
    by_agreement: dict[int, dict[str, Any]] = {}
    until: dt.datetime | None = None
    for row in rows:
        if row.resource not in registry:
            continue  # a resource the host no longer registers
        res = registry.get(row.resource)
        if res.model is None:
            continue  # only records are shared, never the workspace's settings
        entry = by_agreement.setdefault(row.id, {
            "workspace_id": row.granting_workspace_id, "name": row.name,
            "modules": plan_modules(config["RBAC_PLANS"], row.plan), "permissions": {}})
        entry["permissions"][(row.resource, row.action)] = conditions.validate(
            res.model, row.condition)
        if row.expires_at is not None:
            until = row.expires_at if until is None else min(until, row.expires_at)
    shares = tuple(Share(agreement_id, e["workspace_id"], e["name"], e["permissions"],
                         e["modules"]) for agreement_id, e in by_agreement.items())
    return shares, until


def field_security(session: Session, models: Models, roles: dict[int, Any],
                   assigned: set[int], rules: dict[tuple[str, str], list[Rule]],
                   ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Combine the field rules of a member's roles.

    Each assigned role carries its own field rules and its parents' (the most
    restrictive mode wins inside one chain). Between stacked roles the most
    permissive wins, as for grants: a field is hidden only if every role that
    gives access to the resource hides it, and read-only only if every such
    role restricts it. Roles granting nothing on the resource have no say.
    """
    FieldRule = models.FieldRule
    per_role: dict[int, dict[tuple[str, str], str]] = {}
    for fr in session.execute(
        sa.select(FieldRule.role_id, FieldRule.resource, FieldRule.field, FieldRule.mode)
        .where(FieldRule.role_id.in_(list(roles))), execution_options=BYPASS,
    ):
        per_role.setdefault(fr.role_id, {})[(fr.resource, fr.field)] = fr.mode
    if not per_role:
        return {}, {}
    names = {rid: row.name for rid, row in roles.items()}
    granted_by: dict[str, set[str]] = {}  # resource -> role names with an allow on it
    for (resource, _), resource_rules in rules.items():
        granted_by.setdefault(resource, set()).update(
            r.role for r in resource_rules if r.effect == "allow")

    def chain(role_id: int) -> list[int]:
        out, node = [], role_id
        while node is not None and node in roles and node not in out:
            out.append(node)
            node = roles[node].parent_id
        return out

    hidden: dict[str, frozenset[str]] = {}
    readonly: dict[str, frozenset[str]] = {}
    for resource, role_names in granted_by.items():
        modes_per_role = []
        for rid in assigned:
            ids = chain(rid)
            if not role_names & {names[i] for i in ids}:
                continue  # this role (and its parents) grant nothing here
            modes: dict[str, str] = {}
            for i in ids:
                for (res, fld), mode in per_role.get(i, {}).items():
                    if res == resource and modes.get(fld) != "hidden":
                        modes[fld] = mode
            modes_per_role.append(modes)
        if not modes_per_role:
            continue
        h = set.intersection(*({f for f, m in ms.items() if m == "hidden"}
                               for ms in modes_per_role))
        ro = set.intersection(*(set(ms) for ms in modes_per_role)) - h
        if h:
            hidden[resource] = frozenset(h)
        if ro:
            readonly[resource] = frozenset(ro)
    return hidden, readonly


_UNCOMMITTED = "rbac_uncommitted_policy"


def note_uncommitted_policy(session: Session, workspace_ids: list[int]) -> None:
    """Remember that the session's transaction changed these workspaces' policy.

    Called by the flush guard when it bumps ``policy_version``. Access read
    from here until the transaction ends shows changes that may still be
    rolled back; the rollback restores the version number and the next
    committed change reuses it, so a cached copy would then pass for
    current. :func:`load_access` marks such Access as not cacheable.
    """
    tx = _root_transaction(session)
    noted = session.info.get(_UNCOMMITTED)
    if noted is None or noted[0] is not tx:
        noted = (tx, set())
        session.info[_UNCOMMITTED] = noted
    noted[1].update(workspace_ids)


def _has_uncommitted_policy(session: Session, workspace_id: int) -> bool:
    noted = session.info.get(_UNCOMMITTED)
    return (noted is not None and noted[0] is _root_transaction(session)
            and workspace_id in noted[1])


def _root_transaction(session: Session | scoped_session[Session]) -> Any:
    if isinstance(session, scoped_session):
        session = session()
    return session.get_transaction()


def membership_row(session: Session, models: Models, *, user_id: Any = None,
                   workspace_id: Any = None, membership_id: Any = None) -> Any:
    """Fetch the one row a request needs to find (or validate) cached access."""
    M, W = models.Membership, models.Workspace
    stmt = sa.select(M.id, M.workspace_id, M.user_id, M.status, M.department_id,
                     M.visibility, W.plan, W.policy_version).join(W, W.id == M.workspace_id)
    try:
        if membership_id is not None:
            stmt = stmt.where(M.id == _as_column_type(M.id, membership_id))
        else:
            stmt = stmt.where(M.user_id == _as_column_type(M.user_id, user_id),
                              M.workspace_id == _as_column_type(M.workspace_id, workspace_id))
    except (TypeError, ValueError):
        return None  # an id that cannot be one ("abc" for an integer key): no such member
    return session.execute(stmt, execution_options=BYPASS).first()


def _as_column_type(column: Any, value: Any) -> Any:
    """Convert ``value`` to ``column``'s Python type.

    Flask-Login's ``get_id()`` (and a session value) may be a string. Compared
    with an integer column, SQLAlchemy binds a string as VARCHAR, and
    PostgreSQL refuses ``integer = character varying``: every logged-in request
    failed there, while SQLite compared happily.
    """
    try:
        python_type = column.type.python_type
    except NotImplementedError:
        return value
    if value is None or isinstance(value, python_type):
        return value
    return python_type(value)


class AccessCache:
    """A small thread-safe LRU of :class:`Access` by membership id."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._data: OrderedDict[int, Access] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, membership_id: int, version: int, now: dt.datetime) -> Access | None:
        with self._lock:
            access = self._data.get(membership_id)
            if access is None:
                return None
            if access.policy_version != version or (
                    access.valid_until is not None and now >= access.valid_until):
                del self._data[membership_id]
                return None
            self._data.move_to_end(membership_id)
            return access

    def put(self, access: Access) -> None:
        if not access.cacheable:
            return  # read from uncommitted policy changes (see note_uncommitted_policy)
        with self._lock:
            self._data[access.membership_id] = access
            self._data.move_to_end(access.membership_id)
            while len(self._data) > self.size:
                self._data.popitem(last=False)

    def clear(self) -> None:
        with self._lock:
            self._data.clear()
