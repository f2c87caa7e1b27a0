"""The shared read layer of the pages, the JSON API and the CLI.

Every lookup here only reads, within one workspace: an id of another
workspace finds nothing. The views and the API turn the rows into pages and
JSON; writes belong to the services (:mod:`.roles`, :mod:`.team`,
:mod:`.sharing`, :mod:`.tokens`). :func:`parse_utc` and :func:`iso` live here
because the API, the pages and the CLI read and show instants the same way.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from . import conditions, roles
from .config import setting
from .errors import ValidationError
from .models import naive_utc, utcnow
from .policy import Access
from .registry import SCOPES, Registry, Resource
from .resolve import plan_modules as modules_of

if TYPE_CHECKING:
    from .interface import RBACProtocol

#: The module of the extension's own resources (members, roles, settings).
ADMIN_MODULE = "administration"

#: Each scope in words, as the pages show it.
SCOPE_WORDS = {"own": "own records", "team": "their team's records",
               "department": "their department's records", "all": "all records"}


# -- lookups, always within one workspace --------------------------------------


def workspace_roles(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """Roles of a workspace: built-in ones first, then custom ones, by creation."""
    Role = rbac.models.Role
    return list(rbac.db.session.scalars(
        sa.select(Role).where(Role.workspace_id == workspace_id)
        .order_by(Role.builtin.desc(), Role.id)))


def role_in(rbac: RBACProtocol, workspace_id: int, role_id: Any) -> Any:
    """Return the role ``role_id`` of the workspace, or None (also for bad ids)."""
    if not isinstance(role_id, int) or isinstance(role_id, bool):
        return None
    Role = rbac.models.Role
    return rbac.db.session.scalar(
        sa.select(Role).where(Role.id == role_id, Role.workspace_id == workspace_id))


def membership_in(rbac: RBACProtocol, workspace_id: int, membership_id: Any) -> Any:
    """Return the membership ``membership_id`` of the workspace, or None."""
    if not isinstance(membership_id, int) or isinstance(membership_id, bool):
        return None
    M = rbac.models.Membership
    return rbac.db.session.scalar(
        sa.select(M).where(M.id == membership_id, M.workspace_id == workspace_id))


def workspace_memberships(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """Every membership of the workspace (any status), oldest first."""
    M = rbac.models.Membership
    return list(rbac.db.session.scalars(
        sa.select(M).where(M.workspace_id == workspace_id).order_by(M.id)))


def _holdings(rbac: RBACProtocol) -> Any:
    """``(role_id, membership_id)`` of every holding: an assignment (any time window), or
    membership of a department that gives the role."""
    m = rbac.models
    direct = sa.select(m.MemberRole.role_id.label("role_id"),
                       m.MemberRole.membership_id.label("membership_id"))
    through = (sa.select(m.DepartmentRole.role_id, m.Membership.id)
               .join(m.Membership, m.Membership.department_id == m.DepartmentRole.department_id))
    return sa.union(direct, through).subquery()


def member_counts(rbac: RBACProtocol, workspace_id: int) -> dict[int, int]:
    """Number of members holding each role of the workspace, directly (any time window)
    or through their department."""
    m = rbac.models
    held = _holdings(rbac)
    rows = rbac.db.session.execute(
        sa.select(held.c.role_id, sa.func.count(sa.distinct(held.c.membership_id)))
        .join(m.Role, m.Role.id == held.c.role_id)
        .where(m.Role.workspace_id == workspace_id)
        .group_by(held.c.role_id))
    return {role_id: int(count) for role_id, count in rows}


def workspace_conflicts(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """The workspace's segregation-of-duties pairs."""
    C = rbac.models.RoleConflict
    return list(rbac.db.session.scalars(
        sa.select(C).where(C.workspace_id == workspace_id).order_by(C.id)))


def conflict_in(rbac: RBACProtocol, workspace_id: int, conflict_id: int) -> Any:
    C = rbac.models.RoleConflict
    return rbac.db.session.scalar(
        sa.select(C).where(C.id == conflict_id, C.workspace_id == workspace_id))


def member_tokens(rbac: RBACProtocol, membership_id: int) -> list[Any]:
    """A member's API tokens, newest first (revoked ones included)."""
    T = rbac.models.ApiToken
    return list(rbac.db.session.scalars(
        sa.select(T).where(T.membership_id == membership_id).order_by(T.id.desc())))


# -- roles as data --------------------------------------------------------------


def field_rules_of(role: Any) -> dict[str, dict[str, str]]:
    """A role's field rules as ``{resource: {field: mode}}``."""
    out: dict[str, dict[str, str]] = {}
    for rule in getattr(role, "field_rules", []):
        out.setdefault(rule.resource, {})[rule.field] = rule.mode
    return out


def restrictable_fields(res: Resource) -> list[str]:
    """Columns of a resource's model that a field rule may hide or make read-only.

    The same columns :func:`.roles.set_field_rules` accepts: not the primary
    key, the workspace or the owner column, which decide who sees the record.
    """
    if res.model is None:
        return []
    protected = {res.workspace_column, res.owner_column, "id"}
    return [c.key for c in sa.inspect(res.model).columns if c.key not in protected]


def condition_text(clauses: Sequence[conditions.Clause]) -> str:
    """A condition as the JSON text the matrix editor shows ("" for none)."""
    return json.dumps(conditions.to_json(clauses)) if clauses else ""


def covers_role(actor: Access | None, role: Any) -> bool:
    """Whether ``actor`` holds everything ``role`` grants (so may edit, clone or give it)."""
    if actor is None:
        return False
    if role.is_owner:
        return actor.is_owner
    return all(roles.covers(actor, spec) for spec in roles.effective_specs(role))


def role_chain(role: Any) -> list[Any]:
    """The role and its ancestors, nearest first (cycle-safe)."""
    chain: list[Any] = []
    seen: set[int] = set()
    while role is not None and role.id not in seen:
        seen.add(role.id)
        chain.append(role)
        role = role.parent
    return chain


# -- roles at a glance: summary, overview, what a deletion takes away ---------------

#: How many resource names a role's summary lists before "and N more".
SUMMARY_NAMES = 4


def registry_order(registry: Registry) -> list[Resource]:
    """The registry's resources, the CRM data first and the administrative ones last."""
    return [res for resources in ordered_modules(registry).values() for res in resources]


def role_summary(rbac: RBACProtocol, role: Any) -> str:
    """A role in one line: what it touches and the widest scope it grants.

    "Leads, Deals · all records", "Leads · own records": the resources any of
    its allows (its own or inherited) cover, in registry order, and the widest
    of their scopes; "(conditional)" when every grant at that scope carries a
    record condition. The Owner role reaches everything the plan includes.
    """
    if role.is_owner:
        return "Everything the plan includes · all records"
    allows = [s for s in roles.effective_specs(role)
              if s.effect == "allow" and s.resource in rbac.registry]
    if not allows:
        return "No access"
    ordered = registry_order(rbac.registry)
    touched = {s.resource for s in allows}
    names = [res.label or res.name for res in ordered if res.name in touched]
    if len(names) == len(ordered):
        where = "Every resource"
    elif len(names) > SUMMARY_NAMES:
        shown = SUMMARY_NAMES - 1
        where = f"{', '.join(names[:shown])} and {len(names) - shown} more"
    else:
        where = ", ".join(names)
    rank = max(roles.SCOPE_RANK[s.scope] for s in allows)
    widest = [s for s in allows if roles.SCOPE_RANK[s.scope] == rank]
    conditional = " (conditional)" if all(s.condition for s in widest) else ""
    return f"{where} · {SCOPE_WORDS[widest[0].scope]}{conditional}"


@dataclass(frozen=True)
class OverviewCell:
    """A role's reach on one resource for ``view``: one cell of the overview.

    ``scope`` is the widest scope its allows grant ("" for none); ``condition``
    describes the record condition of that widest allow ("" for none);
    ``denied`` says an explicit deny on ``view`` (its own or inherited) takes
    back some or all of it.
    """

    scope: str = ""
    condition: str = ""
    denied: bool = False

    @property
    def level(self) -> int:
        """0 for no access, 1 (own) to 4 (all): the heat map's shade."""
        return SCOPES.index(self.scope) + 1 if self.scope in SCOPES else 0

    @property
    def text(self) -> str:
        """The cell's label, never colour alone: "none", "own", ... "all"."""
        return self.scope or "none"


def overview_cell(specs: Sequence[roles.GrantSpec], resource: str) -> OverviewCell:
    """The ``view`` cell of ``resource`` from a role's effective grants."""
    views = [s for s in specs if s.resource == resource and s.action == "view"]
    allows = [s for s in views if s.effect == "allow"]
    denied = any(s.effect == "deny" for s in views)
    if not allows:
        return OverviewCell(denied=denied)
    rank = max(roles.SCOPE_RANK[s.scope] for s in allows)
    widest = sorted((s for s in allows if roles.SCOPE_RANK[s.scope] == rank),
                    key=lambda s: bool(s.condition))[0]
    return OverviewCell(widest.scope, conditions.describe(widest.condition)
                        if widest.condition else "", denied)


def role_overview(rbac: RBACProtocol, role_list: Sequence[Any],
                  ) -> list[tuple[Any, list[OverviewCell]]]:
    """Each role with its ``view`` cell per resource, in :func:`registry_order`.

    The Owner role reaches every record of every resource (denies never apply
    to it); another role reaches what its own and inherited grants allow.
    """
    ordered = registry_order(rbac.registry)
    rows = []
    for role in role_list:
        if role.is_owner:
            rows.append((role, [OverviewCell("all") for _ in ordered]))
            continue
        specs = roles.effective_specs(role)
        rows.append((role, [overview_cell(specs, res.name) for res in ordered]))
    return rows


def inheriting_counts(rbac: RBACProtocol, workspace_id: int) -> dict[int, int]:
    """Number of roles of the workspace inheriting directly from each role."""
    Role = rbac.models.Role
    rows = rbac.db.session.execute(
        sa.select(Role.parent_id, sa.func.count(Role.id))
        .where(Role.workspace_id == workspace_id, Role.parent_id.is_not(None))
        .group_by(Role.parent_id))
    return {parent_id: int(count) for parent_id, count in rows}


def delete_consequences(holders: int, inheriting: int) -> str:
    """What deleting a role takes away: "3 members hold it and lose its
    permissions; 1 role inherits from it." (counts from the server)."""
    if holders == 0:
        held = "No member holds it"
    elif holders == 1:
        held = "1 member holds it and loses its permissions"
    else:
        held = f"{holders} members hold it and lose its permissions"
    if inheriting == 0:
        inherit = "no role inherits from it"
    elif inheriting == 1:
        inherit = "1 role inherits from it"
    else:
        inherit = f"{inheriting} roles inherit from it"
    return f"{held}; {inherit}."


def delete_question(name: str, holders: int, inheriting: int) -> str:
    """The question a role's deletion asks before it runs, with what it takes away:
    "Delete Junior Rep? 3 members hold it and lose its permissions; 1 role inherits from it."
    """
    return f"Delete {name}? {delete_consequences(holders, inheriting)}"


# -- assignments and effective access ------------------------------------------


def assignment_status(member_role: Any, now: dt.datetime | None = None) -> str:
    """``active``, ``scheduled`` (starts later) or ``expired``."""
    now = now or utcnow()
    if member_role.starts_at is not None and member_role.starts_at > now:
        return "scheduled"
    if member_role.expires_at is not None and member_role.expires_at <= now:
        return "expired"
    return "active"


@dataclass(frozen=True)
class AccessCell:
    """One permission of a member's effective matrix and where it comes from."""

    permission: str
    allowed: bool
    scope: str                   # widest scope reached, with condition/deny notes; "" if none
    sources: tuple[str, ...]     # roles whose allows grant it ("Base (inherited)")
    denied_by: tuple[str, ...]   # roles with an explicit deny on it
    reason: str                  # rbac.explain's reason

    @property
    def described(self) -> str:
        """The scope in words with its notes ("own records where stage in (won)")."""
        scope, sep, rest = self.scope.partition(" ")
        if scope not in SCOPES:
            return self.scope
        return scope_label(scope, self.permission.rpartition(".")[2]) + sep + rest

    def to_json(self) -> dict[str, Any]:
        return {"allowed": self.allowed, "scope": self.scope or None,
                "roles": list(self.sources), "denied_by": list(self.denied_by),
                "reason": self.reason}


@dataclass(frozen=True)
class ResourceRow:
    resource: Resource
    cells: tuple[AccessCell, ...]

    def cell(self, action: str) -> AccessCell | None:
        """The cell of ``action`` (None if the resource has no such action)."""
        permission = f"{self.resource.name}.{action}"
        return next((c for c in self.cells if c.permission == permission), None)


def ordered_modules(registry: Registry) -> dict[str, list[Resource]]:
    """The registry's modules with the administrative one last (the CRM data first)."""
    modules = registry.modules()
    admin = modules.pop(ADMIN_MODULE, None)
    if admin is not None:
        modules[ADMIN_MODULE] = admin
    return modules


def module_columns(modules: dict[str, list[Resource]]) -> dict[str, list[str]]:
    """One column per action any resource of the module has (custom ones included)."""
    return {module: list(dict.fromkeys(a for res in resources for a in res.actions))
            for module, resources in modules.items()}


def direct_role_names(membership: Any, now: dt.datetime | None = None) -> set[str]:
    """Names of the roles a member holds right now by assignment (not inherited)."""
    now = now or utcnow()
    return {mr.role.name for mr in membership.member_roles if mr.active_at(now)}


def effective_matrix(rbac: RBACProtocol, membership: Any, access: Access | None,
                     ) -> dict[str, list[ResourceRow]]:
    """A member's effective permissions by module and resource, with their origin.

    The decision is the extension's own (``rbac.explain`` with the member's
    access); the roles listed are those whose grants take part in it, marked
    "(via department X)" when the member's department gives them, and
    "(inherited)" when the member holds them only through a child role.
    """
    now = utcnow()
    direct = direct_role_names(membership, now)
    department = membership.department
    via_department = ({r.name for r in roles.department_role_list(rbac, department.id)}
                      - direct if department is not None else set())
    owner_roles = tuple(sorted({mr.role.name for mr in membership.member_roles
                                if mr.role.is_owner and mr.active_at(now)})) or ("Owner",)
    summary = roles.summary(access, rbac)

    def label(name: str) -> str:
        if name in direct:
            return name
        if name in via_department:
            return f"{name} (via department {department.name})"
        return f"{name} (inherited)"

    out: dict[str, list[ResourceRow]] = {}
    for module, resources in ordered_modules(rbac.registry).items():
        rows = []
        for res in resources:
            cells = []
            for action in res.actions:
                decision = rbac.explain(action, res.name, access=access)
                sources: tuple[str, ...] = ()
                denied: tuple[str, ...] = ()
                if access is not None and access.is_owner and decision.allowed:
                    sources = owner_roles
                elif access is not None and access.in_plan(res):
                    allows, denies = access.rules_for(res.name, action)
                    sources = tuple(dict.fromkeys(label(r.role) for r in allows))
                    denied = tuple(dict.fromkeys(label(r.role) for r in denies))
                cells.append(AccessCell(
                    f"{res.name}.{action}", decision.allowed,
                    summary.get(f"{res.name}.{action}", "") if access and access.in_plan(res)
                    else "", sources, denied, decision.reason))
            rows.append(ResourceRow(res, tuple(cells)))
        out[module] = rows
    return out


# -- input ------------------------------------------------------------------------


def parse_utc(value: str, field: str) -> dt.datetime:
    """Parse an ISO 8601 instant into naive UTC (a naive input is taken as UTC)."""
    try:
        return naive_utc(dt.datetime.fromisoformat(value.strip()))
    except (TypeError, ValueError, AttributeError, OverflowError):
        raise ValidationError(f"{str(value)[:40]!r} is not an ISO 8601 date and time "
                              "(years 1 to 9999, in UTC)", field=field) from None


def iso(value: dt.datetime | None) -> str | None:
    """A stored naive-UTC instant as ISO 8601 with ``Z``."""
    return None if value is None else value.replace(microsecond=0).isoformat() + "Z"


def plan_modules(rbac: RBACProtocol, plan: str) -> list[str]:
    """Modules of the registry a plan includes (administration always is)."""
    included = modules_of(setting("RBAC_PLANS"), plan)
    return [m for m in ordered_modules(rbac.registry) if included is None or m in included]


# -- words for pages ------------------------------------------------------------


_SCOPE_WORDS = {"own": "own records", "team": "their team's records",
                "department": "their department's records", "all": "all records"}


def scope_label(scope: str, action: str | None = None) -> str:
    """Return a scope in words, e.g. ``own`` as "own records".

    With ``RBAC_UNOWNED_VISIBLE`` on, a ``view`` grant of a narrower scope than
    ``all`` also reaches records nobody owns (rule 5 of :mod:`.policy`), so its
    label says so: "own records and unassigned ones". Pass
    the grant's ``action`` (None is read as ``view``); other actions never
    reach unowned records through the scope. An unknown scope is returned as is.
    """
    words = _SCOPE_WORDS.get(scope)
    if words is None:
        return scope
    if scope != "all" and action in (None, "view") and setting("RBAC_UNOWNED_VISIBLE"):
        return f"{words} and unassigned ones"
    return words
