"""Pure access decisions: no Flask, no database.

An :class:`Access` is a member's effective access in one workspace, computed
once from their roles (see :mod:`.loader`). :func:`decide` answers
"may this member do *action* on *resource* (or on this record)?" with the
reason. :mod:`.query` turns the very same rules into SQL; each branch below
has its SQL twin there, and the property tests check that they agree.

Semantics, in the order they are applied:

1. No active membership: denied.
2. Plan gating: a resource whose module the workspace's plan does not
   include is denied to everyone, the Owner included.
3. Owner: everything else is allowed; denies do not apply (an Owner can
   never be locked out).
4. Roles stack: the union of every active role's allows, and their parents'
   (inherited) allows. Any matching explicit deny wins over any allow.
5. A rule matches a record when the record is in its scope (own, team,
   department, all) and every clause of its condition holds. Records with no
   owner are in every scope for ``view`` when ``unowned_visible`` is set.
   A resource without an owner column has only the ``all`` scope: an own,
   team or department grant on it matches no record (fail closed).
   A record of a child resource is also in scope when its parent record is
   visible to the member (a task on a client the member sees); for an action
   other than ``view``, when the parent is visible for a reason other than
   having no owner (an unowned client's tasks are view-only, like the client).
6. Any action on a record other than ``view`` also needs ``view`` on it:
   nobody edits what they cannot see.
7. A record of another workspace is reachable only through a sharing
   agreement in force from that workspace to the member's (a :class:`Share`)
   that covers the action, ``view`` too, with its conditions holding on the
   record, for a resource in the granting workspace's plan; and then only as
   far as the member's own role allows (rules 3 to 6, applied to the shared
   record as to one of their own, but for rule 5: another workspace's
   unowned records are not visible for having no owner): sharing never
   widens anyone's role.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, field, fields, replace
from typing import Any

from . import conditions, role_conditions
from .registry import SCOPES, Registry, Resource

ALLOW = "allow"
DENY = "deny"


@dataclass(frozen=True)
class Rule:
    """One grant as it takes part in a decision."""

    effect: str
    scope: str
    conditions: tuple[conditions.Clause, ...] = ()
    role: str = ""
    grant_id: int | None = None

    def describe(self) -> str:
        text = f"{self.effect} {self.scope}"
        if self.conditions:
            text += f" where {conditions.describe(self.conditions)}"
        return f"{text} (role {self.role!r}, grant #{self.grant_id})"


@dataclass(frozen=True)
class Share:
    """A sharing agreement in force, as the receiving member's access sees it."""

    agreement_id: int
    workspace_id: int  # the granting workspace
    workspace_name: str
    #: Shared actions by (resource, action), each with its record condition.
    permissions: dict[tuple[str, str], tuple[conditions.Clause, ...]]
    modules: frozenset[str] | None = None  # the granting workspace's plan

    def covers(self, res: Resource, action: str) -> bool:
        """Whether the agreement shares ``action`` (and ``view``) on ``res`` at all."""
        return ((self.modules is None or res.module in self.modules)
                and (res.name, "view") in self.permissions
                and (res.name, action) in self.permissions)

    def allows(self, res: Resource, action: str, record: Any) -> bool:
        """Whether the agreement shares ``action`` and ``view`` on this record."""
        return self.covers(res, action) and all(
            conditions.matches(record, self.permissions[(res.name, a)])
            for a in {"view", action})

    def describe(self) -> str:
        return f"agreement #{self.agreement_id} from {self.workspace_name!r}"


@dataclass(frozen=True)
class Access:
    """A member's effective access in one workspace.

    Immutable and built only from plain values so that it can be cached
    between requests and shared between threads.
    """

    workspace_id: int
    user_id: Any  # the host user's primary key, of whatever type it is (int, UUID string)
    membership_id: int
    active: bool = True
    is_owner: bool = False
    roles: tuple[str, ...] = ()
    modules: frozenset[str] | None = None  # None: the plan includes every module
    team_user_ids: frozenset[Any] = frozenset()
    department_id: int | None = None
    department_user_ids: frozenset[Any] = frozenset()
    rules: dict[tuple[str, str], tuple[Rule, ...]] = field(default_factory=dict)
    unowned_visible: bool = True
    policy_version: int = 0
    valid_until: dt.datetime | None = None
    #: False when read inside a transaction holding uncommitted policy changes
    #: (see :func:`.access_cache.note_uncommitted_policy`): such an Access is never
    #: kept in the process cache.
    cacheable: bool = field(default=True, compare=False)
    #: Field-level security, by resource: fields the member may not see, and
    #: fields they may see but not write (see :func:`.loader.field_security`).
    #: The member's visibility level (own, department, all) capping the
    #: scope of their allows; None leaves the scopes as granted.
    visibility: str | None = None
    hidden_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    readonly_fields: dict[str, frozenset[str]] = field(default_factory=dict)
    #: Sharing agreements in force towards this member's workspace.
    shares: tuple[Share, ...] = ()
    #: What ``explain`` says about the roles beyond their names: a department
    #: that gives one ("Sales via department Sales"), a condition and whether
    #: it holds ("Sales, weekdays Mon-Fri 09:00-18:00 Europe/Paris: outside the window").
    role_notes: tuple[str, ...] = ()
    #: Whether the member may use a browser session here: False when every role
    #: assigned and in force has sign-in off (API tokens only; see
    #: :mod:`.security.signin`).
    sign_in: bool = True
    #: Whether the member may use API tokens here: False when every role assigned
    #: and in force has API access off (a browser session only; see
    #: :mod:`.security.signin`).
    api_access: bool = True
    #: The network conditions this Access was built with, each with whether the
    #: request's address was on them: a request whose address answers otherwise
    #: needs another Access (see :meth:`fits_address`).
    network_checks: tuple[tuple[tuple[str, ...], bool], ...] = ()
    #: SQL criteria built from these rules, by (resource, action); filled by
    #: the query filter so that a cached Access also caches its SQL.
    sql_cache: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False,
                                                   repr=False)
    #: Resource-level answers of ``RBAC.can`` by (resource, action): they
    #: depend only on this Access and the registry, so they are computed once.
    can_cache: dict[tuple[str, str], bool] = field(default_factory=dict, compare=False,
                                                   repr=False)

    #: Compiled record-level checks of ``RBAC.can`` by (resource, action)
    #: (see :mod:`.record_checks`): built once from these rules.
    record_checks: dict[tuple[str, str], Any] = field(default_factory=dict, compare=False,
                                                      repr=False)

    #: :meth:`rules_for`'s answers by (resource, action), split once.
    split_cache: dict[tuple[str, str], tuple[tuple[Rule, ...], tuple[Rule, ...]]] = field(
        default_factory=dict, compare=False, repr=False)

    #: :meth:`owned_only`'s Access, made once.
    owned_cache: list[Access] = field(default_factory=list, compare=False, repr=False)

    def derive(self, **changes: Any) -> Access:
        """A copy of this Access with ``changes``, with empty caches of its own.

        Every cache of an Access (the fields that take no part in comparisons)
        holds answers computed from its other fields: a copy sharing them
        would answer with the rules, scopes or levels of the original.
        """
        fresh = {f.name: type(getattr(self, f.name))() for f in fields(self)
                 if not f.compare and f.name != "cacheable"}
        return replace(self, **{**fresh, **changes})

    def owned_only(self) -> Access:
        """This Access without rule 5's unowned records: the reach a parent record
        must be in for its children to be in scope for an action other than ``view``.

        A record visible only because it has no owner is visible, not
        editable; the tasks and notes on it are no more the member's than it is.
        """
        if not self.unowned_visible:
            return self
        if not self.owned_cache:
            self.owned_cache.append(self.derive(unowned_visible=False))
        return self.owned_cache[0]

    def rules_for(self, resource: str, action: str) -> tuple[tuple[Rule, ...], tuple[Rule, ...]]:
        """Return (allows, denies) for one resource and action."""
        key = (resource, action)
        split = self.split_cache.get(key)
        if split is None:
            rules = self.rules.get(key, ())
            split = self.split_cache[key] = (tuple(r for r in rules if r.effect == ALLOW),
                                             tuple(r for r in rules if r.effect == DENY))
        return split

    def scopes_for(self, rule: Rule) -> tuple[str, ...]:
        """The scopes a rule reaches for this member, under their visibility level.

        An allow wider than the level is cut down to the level, plus the
        member's assigned members (as in most CRMs, a manager keeps seeing
        their team). Denies are never cut: narrowing a deny would widen access.
        """
        if (rule.effect == DENY or self.visibility is None
                or SCOPES.index(rule.scope) <= SCOPES.index(self.visibility)):
            return (rule.scope,)
        return (self.visibility, "team")

    def hidden(self, resource: str) -> frozenset[str]:
        """Fields of ``resource`` this member may not see."""
        return self.hidden_fields.get(resource, frozenset())

    def unwritable(self, resource: str) -> frozenset[str]:
        """Fields of ``resource`` this member may not write (hidden or read-only)."""
        return self.hidden(resource) | self.readonly_fields.get(resource, frozenset())

    def fits_address(self, address: str | None) -> bool:
        """Whether this Access holds for a request from ``address`` (network conditions)."""
        return all(role_conditions.address_in(address, role_conditions.networks_of(nets)) == ok
                   for nets, ok in self.network_checks)

    def in_plan(self, res: Resource) -> bool:
        return self.modules is None or res.module in self.modules


@dataclass
class Decision:
    """The outcome of :func:`decide`, with the path that led to it."""

    allowed: bool
    reason: str
    rule: Rule | None = None
    steps: list[str] = field(default_factory=list)
    #: The sharing agreement through which a record of another workspace was allowed.
    agreement_id: int | None = None
    #: The request field a refusal of bad input (400) names.
    field: str | None = None

    def __bool__(self) -> bool:
        return self.allowed


#: Loads a parent record by primary key (with no filtering); None if missing.
ParentLoader = Callable[[Resource, Any], Any]


def scope_matches(access: Access, res: Resource, scope: str, record: Any) -> bool:
    """Return whether ``record`` is inside ``scope`` for ``access``."""
    if scope == "all":
        return True
    if res.owner_column is None:
        # No owner column: no record is anyone's own, team's or department's.
        # Grants are refused such scopes when saved; a stored one matches nothing.
        return False
    owner = getattr(record, res.owner_column)
    if owner is None:
        return False
    if scope == "own":
        return owner == access.user_id
    if scope == "team":
        return owner == access.user_id or owner in access.team_user_ids
    if scope == "department":
        if res.department_column is not None:
            dept = getattr(record, res.department_column)
            return (dept is not None and dept == access.department_id) or owner == access.user_id
        return owner == access.user_id or owner in access.department_user_ids
    return False


def _in_any_scope(access: Access, registry: Registry, res: Resource, action: str,
                  rule: Rule, record: Any, load_parent: ParentLoader | None) -> bool:
    if any(scope_matches(access, res, s, record) for s in access.scopes_for(rule)):
        return True
    if (action == "view" and rule.effect == ALLOW and access.unowned_visible
            and res.owner_column is not None and getattr(record, res.owner_column) is None):
        return True
    if rule.effect == ALLOW and res.parent is not None and load_parent is not None:
        fk = getattr(record, res.parent_column)  # type: ignore[arg-type]
        if fk is not None:
            parent_res = registry.get(res.parent)
            parent = load_parent(parent_res, fk)
            if parent is not None:
                reach = access if action == "view" else access.owned_only()
                return _record_allows(reach, registry, parent_res, "view", parent, load_parent)
    return False


def _rule_matches(access: Access, registry: Registry, res: Resource, action: str, rule: Rule,
                  record: Any, load_parent: ParentLoader | None) -> bool:
    return (_in_any_scope(access, registry, res, action, rule, record, load_parent)
            and conditions.matches(record, rule.conditions))


def _action_allowed(access: Access, registry: Registry, res: Resource, action: str,
                    record: Any, load_parent: ParentLoader | None) -> Decision:
    allows, denies = access.rules_for(res.name, action)
    for rule in denies:
        if _rule_matches(access, registry, res, action, rule, record, load_parent):
            return Decision(False, f"{action} on {res.name}: explicit deny, {rule.describe()}", rule)
    for rule in allows:
        if _rule_matches(access, registry, res, action, rule, record, load_parent):
            return Decision(True, f"{action} on {res.name}: {rule.describe()}", rule)
    if not allows:
        return Decision(False, f"{action} on {res.name}: no role grants it")
    return Decision(False, f"{action} on {res.name}: the record is outside every granted scope "
                           f"or condition ({'; '.join(r.describe() for r in allows)})")


def _record_allowed(access: Access, registry: Registry, res: Resource, action: str,
                    record: Any, load_parent: ParentLoader | None) -> Decision:
    ws = res.workspace_of(record, access.workspace_id)
    if ws != access.workspace_id:
        return _shared_allowed(access, registry, res, action, record, load_parent, ws)
    return _member_allowed(access, registry, res, action, record, load_parent)


def _member_allowed(access: Access, registry: Registry, res: Resource, action: str,
                    record: Any, load_parent: ParentLoader | None) -> Decision:
    """Rules 3 to 6: what the member's own roles allow on the record."""
    if access.is_owner:
        return Decision(True, "workspace owner: every action the plan includes")
    view = _action_allowed(access, registry, res, "view", record, load_parent)
    if action == "view" or not view.allowed:
        return view
    return _action_allowed(access, registry, res, action, record, load_parent)


def _action_allows(access: Access, registry: Registry, res: Resource, action: str,
                   record: Any, load_parent: ParentLoader | None) -> bool:
    """:func:`_action_allowed`'s answer without its reason."""
    allows, denies = access.rules_for(res.name, action)
    for rule in denies:
        if _rule_matches(access, registry, res, action, rule, record, load_parent):
            return False
    for rule in allows:
        if _rule_matches(access, registry, res, action, rule, record, load_parent):
            return True
    return False


def _record_allows(access: Access, registry: Registry, res: Resource, action: str,
                   record: Any, load_parent: ParentLoader | None) -> bool:
    """:func:`_record_allowed`'s answer; only a shared record builds the reasons."""
    ws = res.workspace_of(record, access.workspace_id)
    if ws != access.workspace_id:
        return _shared_allowed(access, registry, res, action, record, load_parent, ws).allowed
    if access.is_owner:
        return True
    return (_action_allows(access, registry, res, "view", record, load_parent)
            and (action == "view"
                 or _action_allows(access, registry, res, action, record, load_parent)))


def allowed(access: Access | None, registry: Registry, action: str, resource: str,
            record: Any, load_parent: ParentLoader | None = None) -> bool:
    """``decide(...).allowed`` for a record, without building the reasons.

    ``rbac.can`` asks this for every record a page shows a button for; the
    reasons (rule descriptions, steps) cost several times the decision, and
    only ``explain`` reads them. The rules are :func:`decide`'s, step for step.
    """
    res = registry.check_action(resource, action)
    if access is None or not access.active or not access.in_plan(res):
        return False
    return _record_allows(access, registry, res, action, record, load_parent)


def _shared_allowed(access: Access, registry: Registry, res: Resource, action: str,
                    record: Any, load_parent: ParentLoader | None, ws: Any) -> Decision:
    """Rule 7: a record of another workspace, through a sharing agreement."""
    shares = [s for s in access.shares if s.workspace_id == ws]
    if not shares:
        return Decision(False, f"the record belongs to another workspace (#{ws})")
    share = next((s for s in shares if s.allows(res, action, record)), None)
    if share is None:
        names = "; ".join(s.describe() for s in shares)
        return Decision(False, f"the record belongs to workspace #{ws}, whose sharing "
                               f"({names}) does not share {action} on this {res.name} record")
    # Another workspace's unassigned records are its own pool, not this member's:
    # rule 5 (unowned records visible) stays in their own workspace.
    member = _member_allowed(access.owned_only(), registry, res, action, record, load_parent)
    via = f"shared by {share.workspace_name!r} under agreement #{share.agreement_id}"
    if not member:
        return Decision(False, f"{via}, but your own role does not allow it: {member.reason}",
                        member.rule, agreement_id=share.agreement_id)
    return Decision(True, f"{via}; {member.reason}", member.rule,
                    agreement_id=share.agreement_id)


def decide(access: Access | None, registry: Registry, action: str, resource: str,
           record: Any = None, load_parent: ParentLoader | None = None) -> Decision:
    """Decide whether ``access`` may do ``action`` on ``resource`` or ``record``.

    Without a record the question is resource-level: "may this member do the
    action on at least some records?" (used for menus and buttons).
    Unknown resources or actions raise :class:`~.errors.UnknownResource`.
    """
    res = registry.check_action(resource, action)
    steps: list[str] = []
    if access is None:
        return Decision(False, "no membership in this workspace", steps=["no member"])
    steps.append(f"member #{access.membership_id} of workspace #{access.workspace_id}, "
                 f"roles: {', '.join(access.roles) or 'none'}")
    steps.extend(access.role_notes)
    if not access.active:
        return Decision(False, "the membership is not active", steps=steps)
    if not access.in_plan(res):
        return Decision(False, f"the workspace's plan does not include the {res.module!r} module",
                        steps=steps)
    steps.append(f"plan includes module {res.module!r}")
    if record is None:
        if access.is_owner:
            result = Decision(True, "workspace owner: every action the plan includes")
        else:
            result = _resource_allowed(access, res, "view")
            if action != "view" and result.allowed:
                result = _resource_allowed(access, res, action)
    else:
        result = _record_allowed(access, registry, res, action, record, load_parent)
    result.steps = steps + [result.reason]
    return result


def _resource_allowed(access: Access, res: Resource, action: str) -> Decision:
    allows, denies = access.rules_for(res.name, action)
    for rule in denies:
        if rule.scope == "all" and not rule.conditions:
            return Decision(False, f"{action} on {res.name}: explicit deny, {rule.describe()}", rule)
    reaching = [rule for rule in allows if _reaches_records(access, res, rule)]
    if reaching:
        return Decision(True, f"{action} on {res.name}: {reaching[0].describe()}", reaching[0])
    if allows:
        return Decision(False, f"{action} on {res.name}: {res.name} has no owner column, so only "
                               f"an 'all' grant reaches its records", allows[0])
    return Decision(False, f"{action} on {res.name}: no role grants it")


def _reaches_records(access: Access, res: Resource, rule: Rule) -> bool:
    """Whether an allow can match some record of ``res``.

    On a model without an owner column only the ``all`` scope (after the
    visibility cap) or a parent record matches, as :func:`scope_matches` says.
    """
    return (res.model is None or res.owner_column is not None or res.parent is not None
            or "all" in access.scopes_for(rule))
