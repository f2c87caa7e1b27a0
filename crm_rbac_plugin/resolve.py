"""Turn a member's policy rows into their :class:`~.policy.Access`, at an instant.

:func:`build_access` applies every rule of the live policy, and only it does:
role time windows and inheritance, grants, field rules, team and department
members, the visibility level, the plan and sharing agreements. Its rows come
from a :class:`PolicySource`: the database (:class:`.loader.SQLPolicySource`)
or the audit trail rewound (who-could's replay). No SQL and no Flask here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any, NamedTuple, Protocol

from . import conditions, role_conditions
from .policy import Access, Rule, Share
from .registry import Registry

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


class MembershipRow(NamedTuple):
    """The one row a request needs to find (or validate) a member's cached access:
    the membership and its workspace's plan and ``policy_version``."""

    id: int
    workspace_id: int
    user_id: Any
    status: str
    department_id: int | None
    visibility: str | None
    plan: str
    policy_version: int


#: :class:`MembershipRow`'s fields that are membership columns; the rest are the workspace's.
MEMBER_FIELDS = MembershipRow._fields[:6]
WORKSPACE_FIELDS = MembershipRow._fields[6:]


class AccountRow(NamedTuple):
    """What the request's security checks need of the account, read with the user.

    The MFA credential's confirmation, the session record named by the
    Flask session's id (all None when there is none), and the workspace's
    security policy (``policy_saved`` False: no row, the defaults apply).
    """

    mfa_confirmed_at: dt.datetime | None
    session_id: int | None
    session_revoked_at: dt.datetime | None
    session_created_at: dt.datetime | None
    session_last_seen_at: dt.datetime | None
    session_mfa_at: dt.datetime | None
    policy_saved: bool
    mfa: str | None
    step_up_minutes: int | None
    idle_minutes_privileged: int | None
    absolute_minutes_privileged: int | None
    idle_minutes_member: int | None
    absolute_minutes_member: int | None
    max_sessions: int | None
    ip_allowlist: str | None
    allowed_devices: str | None


class PolicySource(Protocol):
    """Where :func:`build_access` reads a member's policy rows from.

    The database (:class:`.loader.SQLPolicySource`, for live decisions) or rows
    rewound from the audit trail (who-could's replay): both are turned into an
    :class:`Access` by the same code, so a replayed answer at "now" is the
    live answer. Rows are read by attribute, as SQLAlchemy rows are.
    """

    def roles(self, membership_id: int, workspace_id: int) -> Iterable[Any]:
        """The member's assigned roles and their ancestors: ``id, name, parent_id,
        is_owner, assigned`` (None for an ancestor only), ``starts_at, expires_at``;
        one row per assignment, the member's own and their department's. Optional
        attributes: ``condition`` (the assignment's), ``role_condition``, ``via``
        (the department's name) and ``timezone`` (the workspace's)."""

    def grants(self, role_ids: list[int]) -> Iterable[Any]:
        """Grants of these roles, by id: ``id, role_id, resource, action, scope,
        effect, condition``."""

    def field_rules(self, role_ids: list[int]) -> Iterable[Any]:
        """Field rules of these roles: ``role_id, resource, field, mode``."""

    def colleagues(self, membership_id: int, workspace_id: int,
                   department_id: int | None) -> Iterable[tuple[int, str]]:
        """``(user_id, "team")`` for the members this one manages and
        ``(user_id, "department")`` for the members of their department."""

    def shares(self, workspace_id: int, now: dt.datetime
               ) -> tuple[tuple[Share, ...], dt.datetime | None]:
        """The agreements in force towards the workspace, and the earliest expiry."""


def _allowed_by_roles(flag: str, roles: dict[int, Any], active_role_ids: set[int],
                      is_owner: bool) -> bool:
    """Whether a role's ``flag`` (``sign_in``, ``api_access``) lets the member: an Owner
    always, else any role assigned and in force. The assigned roles decide, not their
    parents: turning it off on a role is not undone by what it inherits. No role in
    force refuses nothing here."""
    return is_owner or not active_role_ids or any(
        getattr(roles[rid], flag, True) for rid in active_role_ids if rid in roles)


def build_access(source: PolicySource, registry: Registry, config: dict[str, Any],
                 membership_row: MembershipRow, now: dt.datetime, *,
                 cacheable: bool = True, address: str | None = None) -> Access:
    """Build the :class:`Access` of one membership at ``now`` from ``source``'s rows.

    Every rule of the live policy is applied here and only here: role time
    windows, conditions (weekdays, hours, networks: ``address`` is the
    request's client address) and inheritance, grants, field rules, team and
    department members, the visibility level, the plan and sharing agreements.
    """
    m = membership_row
    held = _roles_in_force(source.roles(m.id, m.workspace_id), now, address)
    roles, active_role_ids, valid_until = held.roles, held.active, held.valid_until
    names = {rid: row.name for rid, row in roles.items()}
    is_owner = any(row.is_owner for row in roles.values())
    sign_in, api_access = (_allowed_by_roles(flag, roles, active_role_ids, is_owner)
                           for flag in ("sign_in", "api_access"))
    rules = _rules(registry, source.grants(list(roles)), names) if roles else {}

    hidden: dict[str, frozenset[str]] = {}
    readonly: dict[str, frozenset[str]] = {}
    if roles and not is_owner:
        hidden, readonly = combine_field_rules(source.field_rules(list(roles)), roles,
                                               active_role_ids, rules)

    team: frozenset[int] = frozenset()
    dept_users: frozenset[int] = frozenset()
    if not is_owner:
        colleagues = list(source.colleagues(m.id, m.workspace_id, m.department_id))
        team = frozenset(uid for uid, kind in colleagues if kind == "team")
        dept_users = frozenset(uid for uid, kind in colleagues if kind == "department")
    shares, shares_until = source.shares(m.workspace_id, now)
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
        cacheable=cacheable,
        visibility=m.visibility,
        hidden_fields=hidden,
        readonly_fields=readonly,
        shares=shares,
        role_notes=held.notes,
        network_checks=held.network_checks,
        sign_in=sign_in,
        api_access=api_access,
    )


class RolesInForce(NamedTuple):
    """What :func:`_roles_in_force` finds: the roles in force with their ancestors
    (by id), the ids of the assigned ones, when that set may next change, the
    notes ``explain`` shows (conditions, departments) and the network
    conditions checked against the request's address with their outcome."""

    roles: dict[int, Any]
    active: set[int]
    valid_until: dt.datetime | None
    notes: tuple[str, ...]
    network_checks: tuple[tuple[tuple[str, ...], bool], ...]


def _earliest(a: dt.datetime | None, b: dt.datetime | None) -> dt.datetime | None:
    return b if a is None else a if b is None else min(a, b)


def _conditions_hold(row: Any, now: dt.datetime, address: str | None,
                     checks: list[tuple[tuple[str, ...], bool]], notes: list[str],
                     ) -> tuple[bool, dt.datetime | None]:
    """Apply the role's and the assignment's conditions to one assignment row.

    Return whether both hold and when the answer may next change. Rows
    without a condition (most) cost two attribute reads.
    """
    raw_role, raw_own = getattr(row, "role_condition", None), getattr(row, "condition", None)
    if not raw_role and not raw_own:
        return True, None
    tz = getattr(row, "timezone", None)
    ok, until = True, None
    for cond in (role_conditions.stored(raw_role), role_conditions.stored(raw_own)):
        if not cond:
            continue
        until = _earliest(until, role_conditions.next_change(cond, now, tz))
        if cond.networks:
            checks.append((cond.networks, role_conditions.in_networks(cond, address)))
        why = role_conditions.refusal(cond, now, tz, address)
        notes.append(f"{row.name}, {role_conditions.describe(cond, tz)}: "
                     f"{why or 'in force'}")
        ok = ok and not why
    return ok, until


def _roles_in_force(rows: Iterable[Any], now: dt.datetime,
                    address: str | None = None) -> RolesInForce:
    """Return the roles in force at ``now`` (see :class:`RolesInForce`).

    An assignment is in force between its start and expiry while its role's
    and its own conditions hold (weekdays and hours in the workspace's zone,
    ``address`` on the listed networks).
    """
    valid_until: dt.datetime | None = None
    active_role_ids: set[int] = set()
    notes: list[str] = []
    checks: list[tuple[tuple[str, ...], bool]] = []
    by_id: dict[int, Any] = {}  # the assigned roles of this workspace and their ancestors
    for row in rows:
        by_id[row.id] = row
        if row.assigned is None:
            continue  # an ancestor only
        starts, expires = row.starts_at, row.expires_at
        if starts is not None and starts > now:
            valid_until = _earliest(valid_until, starts)
            continue
        if expires is not None:
            if expires <= now:
                continue
            valid_until = _earliest(valid_until, expires)
        via = getattr(row, "via", None)
        if via is not None:
            notes.append(f"{row.name} via department {via}")
        ok, until = _conditions_hold(row, now, address, checks, notes)
        valid_until = _earliest(valid_until, until)
        if ok:
            active_role_ids.add(row.id)
    # The active roles and their ancestors (the rows also follow inactive ones).
    roles: dict[int, Any] = {}
    todo = [rid for rid in active_role_ids if rid in by_id]
    while todo:
        row = by_id[todo.pop()]
        roles[row.id] = row
        if row.parent_id is not None and row.parent_id in by_id and row.parent_id not in roles:
            todo.append(row.parent_id)
    return RolesInForce(roles, active_role_ids, valid_until, tuple(dict.fromkeys(notes)),
                        tuple(dict.fromkeys(checks)))


#: Rules without a condition by (effect, scope, role name, grant id): a Rule is
#: immutable, so every Access built from the same grant row shares one, and a
#: cold resolution builds only the rules of grants changed since.
_PLAIN_RULES: dict[tuple[str, str, str, Any], Rule] = {}
_PLAIN_RULES_MAX = 100_000


def _rules(registry: Registry, grants: Iterable[Any], names: dict[int, str],
           ) -> dict[tuple[str, str], list[Rule]]:
    rules: dict[tuple[str, str], list[Rule]] = {}
    known = _PLAIN_RULES
    for g in grants:
        resource = g.resource
        if resource not in registry:
            continue  # a grant for a resource the host no longer registers
        if g.condition:
            res = registry.get(resource)
            clauses = (conditions.stored(res.model, g.condition, deny=g.effect == "deny")
                       if res.model else ())
            rule = Rule(g.effect, g.scope, clauses, names[g.role_id], g.id)
        else:
            key = (g.effect, g.scope, names[g.role_id], g.id)
            rule = known.get(key)  # type: ignore[assignment]
            if rule is None:
                if len(known) >= _PLAIN_RULES_MAX:
                    known.clear()
                rule = known[key] = Rule(g.effect, g.scope, (), names[g.role_id], g.id)
        rules.setdefault((resource, g.action), []).append(rule)
    return rules


def combine_field_rules(field_rules: Iterable[Any], roles: dict[int, Any], assigned: set[int],
                        rules: dict[tuple[str, str], list[Rule]],
                        ) -> tuple[dict[str, frozenset[str]], dict[str, frozenset[str]]]:
    """Combine the field rules of a member's roles.

    Each assigned role carries its own field rules and its parents' (the most
    restrictive mode wins inside one chain). Between stacked roles the most
    permissive wins, as for grants: a field is hidden only if every role that
    gives access to the resource hides it, and read-only only if every such
    role restricts it. Roles granting nothing on the resource have no say.
    """
    per_role: dict[int, dict[tuple[str, str], str]] = {}
    for fr in field_rules:
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
