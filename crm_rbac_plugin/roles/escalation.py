"""Who may touch a role: an active member with the permission, in the same workspace,
never granting or changing more than they hold (Owner and Admin are the Owner's alone)."""

from __future__ import annotations

import weakref
from collections.abc import Iterable, Mapping, Set
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import object_session

from ..defaults import ADMIN_RESOURCES, APPROVALS_RESOURCE, BILLING_RESOURCE
from ..errors import PermissionDenied
from ..loader import BYPASS
from ..policy import Access, Rule
from .field_rules import role_field_modes
from .grants import SCOPE_RANK, GrantSpec, effective_specs

if TYPE_CHECKING:
    from ..interface import RBACProtocol


PRIVILEGED_KEYS = ("owner", "admin")

#: Administrative resources whose ``manage`` makes a role privileged (:func:`is_privileged`).
MANAGED = frozenset({"members", "roles", "settings"})

#: Resources without records: their scope reads the members acted on
#: (:func:`member_in_scope`), which a visibility level does not cap.
_UNCAPPED = frozenset({name for name, _ in ADMIN_RESOURCES}
                      | {APPROVALS_RESOURCE[0], BILLING_RESOURCE[0]})


def capped(access: Access) -> Access:
    """``access`` with each allow on records split into the scopes its visibility level
    leaves it (:meth:`..policy.Access.scopes_for`), so that :func:`covers` (which
    compares granted scopes) sees what the member reaches.

    A member whose visibility is capped to their own records holds no more
    than that, whatever their roles grant: what they give, share or view as
    is measured against the capped access.
    """
    if access.visibility is None:
        return access
    rules: dict[tuple[str, str], tuple[Rule, ...]] = {}
    for key, key_rules in access.rules.items():
        rules[key] = key_rules if key[0] in _UNCAPPED else tuple(
            replace(rule, scope=scope) for rule in key_rules for scope in access.scopes_for(rule))
    return access.derive(rules=rules, visibility=None)


def covers(actor: Access, spec: GrantSpec) -> bool:
    """Whether ``actor`` holds at least what ``spec`` would grant.

    A deny restricts, so it never escalates. An allow is covered by an allow of
    the actor on the same cell whose scope, as the actor's visibility level
    leaves it (:func:`capped`), is at least as wide and whose condition (if
    any) is a subset of the spec's (fewer clauses = more rows), provided the
    actor has no deny on that cell.
    """
    if spec.effect == "deny" or actor.is_owner:
        return True
    allows, denies = capped(actor).rules_for(spec.resource, spec.action)
    if denies:
        return False
    for rule in allows:
        if SCOPE_RANK[rule.scope] >= SCOPE_RANK[spec.scope] and (
                set(rule.conditions) <= set(spec.condition)):
            return True
    return False


def require(rbac: RBACProtocol, actor: Access | None, resource: str, action: str) -> Access:
    """Refuse unless ``actor`` is active and may ``action`` on ``resource``."""
    if actor is None or not actor.active:
        raise PermissionDenied("You are not an active member of this workspace.")
    decision = rbac.decide(actor, action, resource)
    if not decision:
        raise PermissionDenied(f"You may not {action} {resource}: {decision.reason}",
                               resource=resource, action=action)
    return actor


def require_covered(actor: Access, specs: Iterable[GrantSpec], what: str,
                    fields: Mapping[tuple[str, str], str] | None = None,
                    kept: Set[Loosened] = frozenset()) -> None:
    """Refuse (403) ``specs`` the actor does not cover (:func:`covers`), naming them.

    With the role's field modes ``fields``, also refuse a field the role would
    show or open past the actor's own (:func:`loosened`), unless ``kept``
    (what the role already showed before an edit) holds it.
    """
    specs = list(specs)
    covering = capped(actor)
    missing = sorted({s.permission + f" [{s.scope}]" for s in specs if not covers(covering, s)})
    if missing:
        raise PermissionDenied(
            f"You cannot {what}: it grants more than you hold ({', '.join(missing)}).")
    opened = sorted(loosened(actor, specs, fields) - kept if fields is not None else (),
                    key=lambda item: (item[2] != "hidden", item))
    if opened:
        resource, _, kind = opened[0]
        names = [name for res, name, k in opened if (res, k) == (resource, kind)]
        raise PermissionDenied(
            f"You cannot {what}: {', '.join(names)} of {resource} "
            f"{'is' if len(names) == 1 else 'are'} "
            f"{'hidden from' if kind == 'hidden' else 'read-only for'} you, and the role "
            "would not keep it so.", field="field_rules")


def require_role_covered(actor: Access, role: Any, what: str) -> None:
    """:func:`require_covered` for giving ``role`` as it stands, grants and field rules
    (an Owner's field rules hide nothing, so theirs are not read)."""
    require_covered(actor, effective_specs(role), what,
                    None if actor.is_owner else role_field_modes(role))


#: A field a role would loosen past its giver: (resource, field, "hidden" or "read-only").
Loosened = tuple[str, str, str]


def loosened(actor: Access, specs: Iterable[GrantSpec],
             modes: Mapping[tuple[str, str], str]) -> frozenset[Loosened]:
    """The fields a role allowing ``specs`` with field ``modes`` would show or open
    although ``actor`` may not read or write them.

    Between stacked roles the most permissive field rule wins, so a role
    showing a field hidden from the actor gives its holders that field: on
    every resource the role allows anything, a field hidden from the actor
    must stay hidden, and one read-only for them read-only or hidden.
    """
    if actor.is_owner:
        return frozenset()
    out: set[Loosened] = set()
    for resource in {s.resource for s in specs if s.effect == "allow"}:
        hidden = actor.hidden(resource)
        out.update((resource, f, "hidden") for f in hidden
                   if modes.get((resource, f)) != "hidden")
        out.update((resource, f, "read-only") for f in actor.unwritable(resource) - hidden
                   if (resource, f) not in modes)
    return frozenset(out)


def has_full_access(role: Any) -> bool:
    """The built-in Owner and Admin: always full access, so never edited, conditional or capped."""
    return bool(role.is_owner) or (role.builtin and role.key in PRIVILEGED_KEYS)


def is_privileged(role: Any) -> bool:
    """Owner, Admin, or a role (its parents included) allowing manage on members, roles or
    settings, or letting its holders decide approvals: only an Owner gives or takes it,
    and its holders are protected as Admins.

    Whoever manages members, roles or settings can make themselves or anyone an
    Admin in all but name, so such a role is an Admin role whatever it is
    called (a clone of Admin is one). Whoever gives the approver permission
    chooses the second pair of eyes of their own requests, so a role holding
    it (:func:`approver_permissions`) is privileged too. It is also what an
    approval policy's "assigning a privileged role" means.
    """
    return has_full_access(role) or privileged_specs(effective_specs(role),
                                                     approver_permissions(role))


#: The approver permission of a workspace without an approval policy row.
APPROVER_PERMISSION = f"{APPROVALS_RESOURCE[0]}.decide"
#: ``session.info`` key of the approver permissions read in the current transaction.
APPROVERS_KEY = "rbac_approver_permissions"


def approver_permissions(role: Any) -> frozenset[str]:
    """``approvals.decide`` and the approver permission of ``role``'s workspace policy.

    Read from the role's own session (a role not yet in one has only the
    default); the policy table is found in the role's metadata, so this layer
    needs no model class of the approvals package.
    """
    session = object_session(role)
    table = type(role).metadata.tables.get("rbac_approval_policy")
    if session is None or table is None or role.workspace_id is None:
        return frozenset({APPROVER_PERMISSION})
    # Read once per transaction and workspace: a role change asks this of
    # several roles, and the policy changes in a transaction of its own.
    txn = session.get_transaction()
    held = session.info.get(APPROVERS_KEY)
    if held is None or held[0]() is not txn:
        held = (weakref.ref(txn) if txn is not None else lambda: None, {})
        session.info[APPROVERS_KEY] = held
    cache: dict[int, frozenset[str]] = held[1]
    if role.workspace_id not in cache:
        with session.no_autoflush:
            named = session.execute(sa.select(table.c.approver_permission).where(
                table.c.workspace_id == role.workspace_id), execution_options=BYPASS).scalar()
        cache[role.workspace_id] = frozenset({APPROVER_PERMISSION, *([named] if named else [])})
    return cache[role.workspace_id]


def privileged_specs(specs: Iterable[GrantSpec],
                     approvers: Set[str] = frozenset({APPROVER_PERMISSION})) -> bool:
    """Whether ``specs`` allow manage (or every action) on members, roles or settings, or
    one of the ``approvers`` permissions (the action or every action of its resource)."""
    wanted = {tuple(p.rpartition(".")[::2]) for p in approvers}
    return any(s.effect == "allow" and (
        (s.resource in MANAGED and s.action in ("manage", "*"))
        or (s.resource, s.action) in wanted
        or (s.action == "*" and any(s.resource == r for r, _ in wanted)))
        for s in specs)


def privileged_permission(action: str, resource: str,
                          approvers: Set[str] = frozenset({APPROVER_PERMISSION})) -> bool:
    """Whether a role granting ``resource.action`` is privileged: only an Owner gives one
    (so only an Owner is sent an access request for it)."""
    return privileged_specs([GrantSpec(resource, action, "all")], approvers)


def same_workspace(actor: Access, *objects: Any) -> None:
    """Refuse objects of another workspace than the actor's."""
    for obj in objects:
        if obj is not None and obj.workspace_id != actor.workspace_id:
            raise PermissionDenied("That belongs to another workspace.")


def _widest_scope(actor: Access, resource: str, action: str) -> str | None:
    """The widest scope of the actor's allows on ``resource.action`` (None: no allow).

    The grant's own scope: a visibility level caps which *records* a member
    sees, not which members they manage.
    """
    allows, _ = actor.rules_for(resource, action)
    scopes = [rule.scope for rule in allows]
    return max(scopes, key=lambda s: SCOPE_RANK[s]) if scopes else None


def manages_everyone(actor: Access, action: str = "edit") -> bool:
    """Whether the actor's ``members.<action>`` reaches every member (an Owner's does)."""
    return actor.is_owner or _widest_scope(actor, "members", action) == "all"


def member_in_scope(actor: Access, action: str, membership: Any) -> bool:
    """Whether ``membership`` lies in the scope of the actor's ``members.<action>``.

    The ``members`` resource has no records, so its grant's scope is read
    against the member acted on: ``all`` reaches everyone, ``department`` the
    members of the actor's department, ``team`` the members assigned to the
    actor, ``own`` only the actor. This is what lets the built-in Manager
    manage their own team and no one else (``000``, ``001``). A pending
    member is an invitation: setting its roles is inviting, so it is read
    against ``members.create``.
    """
    if actor.is_owner:
        return True
    if membership.status == "pending" and action == "edit":
        action = "create"
    scope = _widest_scope(actor, "members", action)
    if scope == "all":
        return True
    if scope == "department":
        return membership.department_id is not None and membership.department_id == actor.department_id
    if scope == "team":
        return membership.user_id in actor.team_user_ids or membership.id == actor.membership_id
    return scope == "own" and membership.id == actor.membership_id


def require_member_in_scope(actor: Access, action: str, membership: Any) -> None:
    """Refuse (403) a change to a member outside the actor's ``members.<action>`` scope."""
    if not member_in_scope(actor, action, membership):
        scope = _widest_scope(actor, "members", "create" if membership.status == "pending"
                              and action == "edit" else action)
        where = {"department": "your own department", "team": "the members assigned to you",
                 "own": "yourself"}.get(scope or "", "nobody")
        raise PermissionDenied(f"You may manage only {where}; {membership.display_name} is not "
                               "among them.", resource="members", action=action)


def department_in_scope(actor: Access, department_id: int | None) -> bool:
    """Whether the actor may invite into ``department_id`` (``members.create``'s scope)."""
    if actor.is_owner:
        return True
    scope = _widest_scope(actor, "members", "create")
    if scope == "all":
        return True
    return scope == "department" and department_id is not None and department_id == actor.department_id


def withheld_fields(actor: Access, resource: str, action: str) -> str:
    """Why ``actor`` may not hand ``action`` on ``resource`` to another workspace, field-wise,
    or "" when nothing stops it.

    The receiving side's own roles decide which fields its members see of a
    shared record, so a field hidden from the giver (view, export) or
    read-only for them (edit) would reach another workspace, even one the
    giver owns themselves.
    """
    reading = action in ("view", "export")
    fields = actor.hidden(resource) if reading else (
        actor.unwritable(resource) if action == "edit" else frozenset())
    if not fields:
        return ""
    verb = "is" if len(fields) == 1 else "are"
    return (f"{', '.join(sorted(fields))} of {resource} {verb} "
            f"{'hidden from' if reading else 'read-only for'} you")
