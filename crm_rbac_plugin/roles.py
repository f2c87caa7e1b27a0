"""Role management with the rules that keep roles safe.

Every function takes the *actor* (the :class:`~.policy.Access` of whoever asks)
and refuses, with :class:`~.errors.PermissionDenied` (403) or
:class:`~.errors.ValidationError` (400), before changing anything:

- nobody but an Owner creates, edits or assigns a role that grants more than
  they hold themselves, nor touches a role wider than their own;
- only an Owner gives or takes the Owner or Admin role, and a workspace keeps
  at least one active Owner, also under concurrent requests (the workspace row
  is written first, which serialises such changes on every backend);
- the Owner and Admin roles keep their full access (they cannot be edited);
- every member keeps at least one role assignment *in force now*: a change
  that would leave a member only expired or not-yet-started assignments
  (which give no access) is refused with :class:`~.errors.RuleConflict`
  (409), by :func:`ensure_role_remains`, the one place that counts them;
- pairs of roles declared in conflict (segregation of duties) are never held
  together.

Functions add to the session and flush; the caller commits, so a view's whole
change is one transaction, and a refusal leaves nothing behind (the caller
rolls back).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from . import conditions, inputs
from .config import setting
from .errors import (
    InvalidCondition,
    PermissionDenied,
    RuleConflict,
    UnknownResource,
    ValidationError,
)
from .loader import BYPASS, load_access, membership_row
from .models import utcnow
from .policy import Access
from .registry import SCOPES, Resource

if TYPE_CHECKING:
    from .interface import RBACProtocol

SCOPE_RANK = {scope: rank for rank, scope in enumerate(SCOPES)}
PRIVILEGED_KEYS = ("owner", "admin")
FIELD_MODES = ("hidden", "readonly")


@dataclass(frozen=True)
class GrantSpec:
    """One validated matrix cell, independent of any database row."""

    resource: str
    action: str
    scope: str = "all"
    effect: str = "allow"
    condition: tuple[conditions.Clause, ...] = ()

    @property
    def permission(self) -> str:
        return f"{self.resource}.{self.action}"

    def to_json(self) -> dict[str, Any]:
        return {"resource": self.resource, "action": self.action, "scope": self.scope,
                "effect": self.effect, "condition": conditions.to_json(self.condition) or None}


# -- input -----------------------------------------------------------------


def permission_items(rbac: RBACProtocol, items: Any, keys: frozenset[str],
                     defaults: Callable[[str], Mapping[str, Any]] = lambda resource: {},
                     ) -> Iterator[tuple[str, Mapping[str, Any], Resource]]:
    """Yield ``(field, item, resource)`` for each entry of a permission list.

    An entry is a ``"resource.action"`` string (completed by ``defaults(resource)``)
    or an object with no keys but ``keys``; its resource and action are checked
    against the registry. Roles' grants and sharing agreements' permissions
    are read by this one loop, so they refuse malformed input alike.
    """
    if isinstance(items, (str, bytes)) or not isinstance(items, Iterable):
        raise ValidationError("permissions must be a list", field="permissions")
    for index, item in enumerate(items):
        field = f"permissions[{index}]"
        if isinstance(item, str):
            resource, _, action = item.rpartition(".")
            item = {"resource": resource, "action": action, **defaults(resource)}
        if not isinstance(item, Mapping):
            raise ValidationError("each permission is 'resource.action' or an object", field=field)
        unknown = set(item) - keys
        if unknown:
            raise ValidationError(f"unknown keys: {', '.join(sorted(map(str, unknown)))}",
                                  field=field)
        resource, action = item.get("resource"), item.get("action")
        if not isinstance(resource, str) or not isinstance(action, str):
            raise ValidationError("resource and action must be strings", field=field)
        try:
            res = rbac.registry.check_action(resource, action)
        except UnknownResource as exc:
            raise ValidationError(str(exc), field=field) from None
        yield field, item, res


def condition_clauses(res: Resource, raw: Any, field: str) -> tuple[conditions.Clause, ...]:
    """Validate a permission's record condition (none when ``raw`` is empty)."""
    if not raw:
        return ()
    if res.model is None:
        raise ValidationError(f"{res.name} has no records to put a condition on",
                              field=f"{field}.condition")
    try:
        return conditions.validate(res.model, raw)
    except InvalidCondition as exc:
        raise ValidationError(str(exc), field=f"{field}.condition") from None


_GRANT_KEYS = frozenset({"resource", "action", "scope", "effect", "condition"})


def parse_grants(rbac: RBACProtocol, items: Iterable[Any], scopes: Mapping[str, str] | None = None,
                 ) -> list[GrantSpec]:
    """Validate grants given as ``"leads.view"`` strings or dicts.

    ``scopes`` gives a default scope per resource for string items
    (``{"leads": "own"}``). Duplicated cells are refused.
    """
    scopes = dict(scopes or {})
    out: dict[tuple[str, str, str], GrantSpec] = {}
    for field, item, res in permission_items(
            rbac, items, _GRANT_KEYS, lambda resource: {"scope": scopes.get(resource, "all")}):
        resource, action = item["resource"], item["action"]
        scope, effect = item.get("scope", "all"), item.get("effect", "allow")
        if scope not in SCOPES:
            raise ValidationError(f"unknown scope {scope!r}; use one of {', '.join(SCOPES)}",
                                  field=f"{field}.scope")
        if effect not in ("allow", "deny"):
            raise ValidationError("effect must be allow or deny", field=f"{field}.effect")
        clauses = condition_clauses(res, item.get("condition"), field)
        key = (resource, action, effect)
        if key in out:
            raise ValidationError(f"{resource}.{action} ({effect}) is listed twice", field=field)
        out[key] = GrantSpec(resource, action, scope, effect, clauses)
    return list(out.values())


def specs_of(role: Any) -> list[GrantSpec]:
    """Return a role's own grants as specs (not its parents')."""
    return [GrantSpec(g.resource, g.action, g.scope, g.effect,
                      tuple((c["field"], c["op"], tuple(c["value"]) if isinstance(c["value"], list)
                             else c["value"]) for c in (g.condition or [])))
            for g in role.grants]


def effective_specs(role: Any) -> list[GrantSpec]:
    """Return a role's grants with those inherited from its parents."""
    out: list[GrantSpec] = []
    seen: set[int] = set()
    while role is not None and role.id not in seen:
        seen.add(role.id)
        out.extend(specs_of(role))
        role = role.parent
    return out


# -- what an actor holds -------------------------------------------------------


def covers(actor: Access, spec: GrantSpec) -> bool:
    """Whether ``actor`` holds at least what ``spec`` would grant.

    A deny restricts, so it never escalates. An allow is covered by an allow of
    the actor on the same cell whose scope is at least as wide and whose
    condition (if any) is a subset of the spec's (fewer clauses = more rows),
    provided the actor has no deny on that cell.
    """
    if spec.effect == "deny" or actor.is_owner:
        return True
    allows, denies = actor.rules_for(spec.resource, spec.action)
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


def _require_covered(actor: Access, specs: Iterable[GrantSpec], what: str) -> None:
    missing = sorted({s.permission + f" [{s.scope}]" for s in specs if not covers(actor, s)})
    if missing:
        raise PermissionDenied(
            f"You cannot {what}: it grants more than you hold ({', '.join(missing)}).")


def is_privileged(role: Any) -> bool:
    """Owner and Admin: only an Owner gives or takes them; they are never edited."""
    return bool(role.is_owner) or (role.builtin and role.key in PRIVILEGED_KEYS)


def same_workspace(actor: Access, *objects: Any) -> None:
    """Refuse objects of another workspace than the actor's."""
    for obj in objects:
        if obj is not None and obj.workspace_id != actor.workspace_id:
            raise PermissionDenied("That belongs to another workspace.")


def _lock_workspace(rbac: RBACProtocol, workspace_id: int) -> None:
    """Write the workspace row first: serialises owner changes on every backend.

    On PostgreSQL the UPDATE takes the row lock, so a concurrent transaction
    waits here and then counts owners afresh; on SQLite it takes the database
    write lock. Bumping the policy version is what this change needs anyway.
    """
    W = rbac.models.Workspace.__table__
    rbac.db.session.execute(sa.update(W).where(W.c.id == workspace_id)
                            .values(policy_version=W.c.policy_version + 1))


#: Why a change that leaves a member without a role in force is refused.
ROLE_REMAINS_RULE = ("every member keeps at least one role in force now (an expired "
                     "assignment, or one that has not started yet, gives no access and "
                     "does not count)")


def in_force(member_role: Any, now: dt.datetime) -> sa.ColumnElement[bool]:
    """SQL twin of ``MemberRole.active_at(now)``: the assignment gives access at ``now``.

    ``member_role`` is the MemberRole model (or an alias of it). The loader
    applies the same window, so what these rules count is what gives access.
    """
    return sa.and_(sa.or_(member_role.starts_at.is_(None), member_role.starts_at <= now),
                   sa.or_(member_role.expires_at.is_(None), member_role.expires_at > now))


def assignments_in_force(membership: Any, *, excluding_member_role: int | None = None,
                         excluding_role: int | None = None) -> list[Any]:
    """The member's role assignments in force now, less those a change takes away."""
    now = utcnow()
    return [mr for mr in membership.member_roles if mr.active_at(now)
            and mr.id != excluding_member_role and mr.role_id != excluding_role]


def ensure_role_remains(membership: Any, *, excluding_member_role: int | None = None,
                        excluding_role: int | None = None) -> None:
    """Refuse (409) a change that would leave ``membership`` no role in force now.

    A member whose assignments have all expired (or not started) has no role:
    every page and API call is refused to them. The rule counts only what
    gives access now, so that such a state is never reached by a removal.
    """
    if not assignments_in_force(membership, excluding_member_role=excluding_member_role,
                                excluding_role=excluding_role):
        raise RuleConflict(f"{membership.display_name} would keep no role: {ROLE_REMAINS_RULE}; "
                           "give another role first", field="role_id")


def active_owner_count(rbac: RBACProtocol, workspace_id: int, *, excluding_member_role: int | None = None,
                       excluding_membership: int | None = None) -> int:
    """Count active members holding an Owner role in force now in the workspace."""
    m = rbac.models
    stmt = (sa.select(sa.func.count(sa.distinct(m.Membership.id)))
            .join(m.MemberRole, m.MemberRole.membership_id == m.Membership.id)
            .join(m.Role, m.Role.id == m.MemberRole.role_id)
            .where(m.Membership.workspace_id == workspace_id, m.Membership.status == "active",
                   m.Role.is_owner.is_(True), in_force(m.MemberRole, utcnow())))
    if excluding_member_role is not None:
        stmt = stmt.where(m.MemberRole.id != excluding_member_role)
    if excluding_membership is not None:
        stmt = stmt.where(m.Membership.id != excluding_membership)
    return int(rbac.db.session.scalar(stmt, execution_options=BYPASS) or 0)


def ensure_owner_remains(rbac: RBACProtocol, workspace_id: int, **excluding: int) -> None:
    """Refuse a change that would leave the workspace without an active Owner."""
    _lock_workspace(rbac, workspace_id)
    if active_owner_count(rbac, workspace_id, **excluding) < 1:
        raise PermissionDenied("A workspace must always keep at least one active Owner "
                               "(an Owner assignment counts only while it is in force).")


# -- roles ---------------------------------------------------------------------


def _lock_for_role_change(rbac: RBACProtocol, role: Any) -> None:
    """Serialise writers of ``role``'s matrix, then re-read what the role holds.

    Two admins saving the same role at the same moment would otherwise each
    delete the cells *they* loaded and insert their own: the stored matrix
    became a mix of both submissions (or a unique-key clash on a shared
    cell). Writing the workspace row first (:func:`_lock_workspace`) makes
    the second save wait until the first commits, on PostgreSQL (row lock)
    and SQLite (database write lock) alike; every change to a role bumps
    that row at flush anyway, so this serialises nothing that was not
    already serialised, only earlier. What this transaction read before the
    lock may be stale, so the session is expired (the lock's statement has
    just flushed it) and the role's grants and field rules are read again
    when the change is computed: the stored matrix is exactly one submission.
    """
    session = rbac.db.session
    Role = rbac.models.Role
    role_id = role.id
    _lock_workspace(rbac, role.workspace_id)
    session.expire_all()
    if session.scalar(sa.select(Role.id).where(Role.id == role_id),
                      execution_options=BYPASS) is None:
        raise ValidationError("this role was deleted meanwhile; reload the page")


@contextmanager
def _concurrent_change_refused(what: str) -> Iterator[None]:
    """Turn a unique-key clash at flush into a clear refusal instead of a 500.

    The locks above prevent it for one role; two requests *creating* similar
    rows at once (two roles given the same new name) can still meet at the
    database's unique constraints. The caller rolls back, as for any refusal.
    """
    try:
        yield
    except sa.exc.IntegrityError:
        raise ValidationError(f"someone else changed {what} at the same moment; "
                              "reload the page and try again") from None


def _set_grants(rbac: RBACProtocol, role: Any, specs: Sequence[GrantSpec]) -> None:
    """Make the role's cells exactly ``specs``, touching only the cells that differ.

    A cell is keyed by (resource, action, effect), as its unique key: a cell
    that stays keeps its row (its scope or condition updated in place), a cell
    that goes is deleted, a new one is inserted. The audit trail then sees
    each cell as removed, added or changed, as the member meant it.
    """
    wanted = {(s.resource, s.action, s.effect): s for s in specs}
    for grant in list(role.grants):
        spec = wanted.pop((grant.resource, grant.action, grant.effect), None)
        if spec is None:
            role.grants.remove(grant)
            continue
        condition = conditions.to_json(spec.condition) or None
        if grant.scope != spec.scope:
            grant.scope = spec.scope
        if grant.condition != condition:
            grant.condition = condition
    for spec in wanted.values():
        role.grants.append(rbac.models.Grant(
            resource=spec.resource, action=spec.action, scope=spec.scope, effect=spec.effect,
            condition=conditions.to_json(spec.condition) or None))


def _check_name(rbac: RBACProtocol, workspace_id: int, name: Any, role_id: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip():
        raise ValidationError("a role needs a name", field="name")
    name = name.strip()
    if len(name) > 80:
        raise ValidationError("the name is longer than 80 characters", field="name")
    inputs.check_unique_name(rbac.db.session, rbac.models.Role, workspace_id, name, role_id,
                             "role")
    return name


def _check_parent(rbac: RBACProtocol, actor: Access, role: Any, parent: Any) -> None:
    if parent is None:
        return
    same_workspace(actor, parent)
    if parent.is_owner:
        raise ValidationError("no role can inherit from Owner", field="parent_id")
    seen = {role.id} if role is not None and role.id is not None else set()
    node = parent
    while node is not None:
        if node.id in seen:
            raise ValidationError("that parent would make an inheritance cycle", field="parent_id")
        seen.add(node.id)
        node = node.parent


def create_role(rbac: RBACProtocol, actor: Access | None, *, name: str, description: str = "",
                grants: Sequence[GrantSpec] = (), parent: Any = None,
                field_rules: Mapping[str, Mapping[str, str]] | None = None) -> Any:
    """Create a custom role in the actor's workspace."""
    actor = require(rbac, actor, "roles", "create")
    name = _check_name(rbac, actor.workspace_id, name)
    _check_parent(rbac, actor, None, parent)
    inherited = effective_specs(parent) if parent is not None else []
    _require_covered(actor, [*grants, *inherited], "create this role")
    role = rbac.models.Role(workspace_id=actor.workspace_id, name=name,
                            description=description or "", builtin=False, parent=parent)
    rbac.db.session.add(role)
    with _concurrent_change_refused("this workspace's roles"):
        _set_grants(rbac, role, grants)
        if field_rules:
            _set_field_rules(rbac, role, field_rules)
        rbac.db.session.flush()
    return role


def _check_editable(rbac: RBACProtocol, actor: Access, role: Any, what: str) -> None:
    same_workspace(actor, role)
    if role.builtin and (role.is_owner or role.key == "admin"):
        raise PermissionDenied(f"The {role.name} role always has full access; it cannot be {what}.")
    _require_covered(actor, effective_specs(role), f"change {role.name}, which is wider than you")


def update_role(rbac: RBACProtocol, actor: Access | None, role: Any, *, name: str | None = None,
                description: str | None = None, grants: Sequence[GrantSpec] | None = None,
                parent: Any = ..., field_rules: Mapping[str, Mapping[str, str]] | None = None,
                ) -> Any:
    """Rename, describe, re-parent or replace the matrix of a role.

    Concurrent updates of one role are serialised
    (:func:`_lock_for_role_change`): the role ends with exactly the last
    committed submission, never a mix.
    """
    actor = require(rbac, actor, "roles", "edit")
    label = f"the role {role.name}"
    with _concurrent_change_refused(label):
        _lock_for_role_change(rbac, role)
    _check_editable(rbac, actor, role, "edited")
    if name is not None:
        role.name = _check_name(rbac, role.workspace_id, name, role.id)
    if description is not None:
        role.description = description
    new_parent = role.parent if parent is ... else parent
    if parent is not ...:
        _check_parent(rbac, actor, role, parent)
    new_grants = list(grants) if grants is not None else specs_of(role)
    inherited = effective_specs(new_parent) if new_parent is not None else []
    _require_covered(actor, [*new_grants, *inherited], f"give {role.name} these permissions")
    with _concurrent_change_refused(label):
        if parent is not ...:
            role.parent = parent
        if grants is not None:
            _set_grants(rbac, role, new_grants)
        if field_rules is not None:
            _set_field_rules(rbac, role, field_rules)
        rbac.db.session.flush()
    return role


def clone_role(rbac: RBACProtocol, actor: Access | None, source: Any, name: str,
               description: str | None = None) -> Any:
    """Create a custom role starting from ``source``'s grants and field rules."""
    if actor is not None:
        same_workspace(actor, source)
    if source.is_owner:
        raise ValidationError("the Owner role cannot be cloned; clone Admin instead",
                              field="source")
    # Copy one committed state of the source: a save of it in flight could
    # otherwise pair its old grants with its new field rules.
    _lock_for_role_change(rbac, source)
    rules: dict[str, dict[str, str]] = {}
    for fr in getattr(source, "field_rules", []):
        rules.setdefault(fr.resource, {})[fr.field] = fr.mode
    return create_role(rbac, actor, name=name,
                       description=source.description if description is None else description,
                       grants=merge_specs(effective_specs(source)), parent=None,
                       field_rules=rules)


def merge_specs(specs: Iterable[GrantSpec]) -> list[GrantSpec]:
    """Flatten inherited grants into one cell per (resource, action, effect)."""
    out: dict[tuple[str, str, str], GrantSpec] = {}
    for spec in specs:
        key = (spec.resource, spec.action, spec.effect)
        if key not in out:  # the role's own grant comes before its parents'
            out[key] = spec
    return list(out.values())


def holders(rbac: RBACProtocol, role: Any) -> list[Any]:
    """Memberships holding ``role`` (any time window)."""
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.Membership).join(m.MemberRole).where(m.MemberRole.role_id == role.id)
        .distinct()))


def delete_role(rbac: RBACProtocol, actor: Access | None, role: Any, *, move_to: Any = None) -> None:
    """Delete a role; its holders move to ``move_to`` or must hold another role."""
    actor = require(rbac, actor, "roles", "delete")
    _check_editable(rbac, actor, role, "deleted")
    m = rbac.models
    if move_to is not None:
        same_workspace(actor, move_to)
        if move_to.id == role.id:
            raise ValidationError("move members to a different role", field="move_to")
    stranded = []
    for membership in holders(rbac, role):
        others = assignments_in_force(membership, excluding_role=role.id)
        if move_to is not None:
            if not any(mr.role_id == move_to.id for mr in others):
                assign_role(rbac, actor, membership, move_to)
        elif not others:
            stranded.append(membership.display_name)
    if stranded:
        raise RuleConflict(
            f"{len(stranded)} member(s) hold only this role among their roles in force "
            f"({', '.join(stranded[:5])}): {ROLE_REMAINS_RULE}; "
            "move them to another role first", field="move_to")
    for child in rbac.db.session.scalars(sa.select(m.Role).where(m.Role.parent_id == role.id)):
        child.parent = None
    for mr in rbac.db.session.scalars(sa.select(m.MemberRole).where(m.MemberRole.role_id == role.id)):
        rbac.db.session.delete(mr)
    rbac.db.session.execute(sa.delete(m.RoleConflict).where(
        sa.or_(m.RoleConflict.role_a_id == role.id, m.RoleConflict.role_b_id == role.id)))
    rbac.db.session.delete(role)
    rbac.db.session.flush()


# -- assignments ---------------------------------------------------------------


def _conflicts_with(rbac: RBACProtocol, role: Any, held_role_ids: set[int]) -> list[str]:
    m = rbac.models
    pairs = rbac.db.session.execute(sa.select(m.RoleConflict).where(
        m.RoleConflict.workspace_id == role.workspace_id,
        sa.or_(m.RoleConflict.role_a_id == role.id, m.RoleConflict.role_b_id == role.id))
    ).scalars()
    names = []
    for pair in pairs:
        other = pair.role_b if pair.role_a_id == role.id else pair.role_a
        if other.id in held_role_ids:
            names.append(other.name)
    return names


def assign_role(rbac: RBACProtocol, actor: Access | None, membership: Any, role: Any, *,
                starts_at: dt.datetime | None = None,
                expires_at: dt.datetime | None = None) -> Any:
    """Give a member a role, optionally only between two UTC instants."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership, role)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own roles.")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can give the {role.name} role.")
    _require_covered(actor, effective_specs(role), f"give {role.name}")
    if starts_at and expires_at and expires_at <= starts_at:
        raise ValidationError("the assignment must end after it starts", field="expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("the expiry is in the past", field="expires_at")
    if role.is_owner and expires_at is not None:
        raise ValidationError("the Owner role cannot be time-limited", field="expires_at")
    held = {mr.role_id for mr in membership.member_roles}
    # An assignment not in force (expired, or starting later) gives nothing now:
    # the role may be given from now on.
    in_force_now = {mr.role_id for mr in assignments_in_force(membership)}
    if role.id in in_force_now and starts_at is None and expires_at is None:
        raise ValidationError(f"{membership.display_name} already holds {role.name}",
                              field="role_id")
    clash = _conflicts_with(rbac, role, held)
    if clash:
        raise PermissionDenied(
            f"{role.name} cannot be held together with {', '.join(clash)} "
            "(segregation of duties).")
    mr = rbac.models.MemberRole(membership=membership, role=role, starts_at=starts_at,
                                expires_at=expires_at)
    rbac.db.session.add(mr)
    rbac.db.session.flush()
    return mr


def remove_role(rbac: RBACProtocol, actor: Access | None, member_role: Any) -> None:
    """Take a role assignment away, keeping at least one Owner and one role."""
    actor = require(rbac, actor, "members", "edit")
    membership, role = member_role.membership, member_role.role
    same_workspace(actor, membership)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own roles.")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can take the {role.name} role away.")
    _require_covered(actor, effective_specs(role), f"take {role.name} away")
    ensure_role_remains(membership, excluding_member_role=member_role.id)
    if role.is_owner:
        ensure_owner_remains(rbac, membership.workspace_id, excluding_member_role=member_role.id)
    rbac.db.session.delete(member_role)
    rbac.db.session.flush()


def remove_conflict(rbac: RBACProtocol, actor: Access | None, conflict: Any) -> None:
    """Drop a segregation-of-duties pair (needs ``roles.manage``, as adding one)."""
    actor = require(rbac, actor, "roles", "manage")
    same_workspace(actor, conflict)
    rbac.db.session.delete(conflict)
    rbac.db.session.flush()


def set_plan(rbac: RBACProtocol, actor: Access | None, workspace: Any, plan: Any) -> None:
    """Change the workspace's plan (Owner only); grants are kept as they are.

    A plan only gates modules at decision time, so moving to a smaller plan
    and back restores every role exactly.
    """
    if actor is None or not actor.active or not actor.is_owner:
        raise PermissionDenied("Only an Owner can change the workspace's plan.",
                               resource="settings", action="manage")
    if workspace.id != actor.workspace_id:
        raise PermissionDenied("That belongs to another workspace.")
    if not isinstance(plan, str) or plan not in setting("RBAC_PLANS"):
        raise ValidationError(f"unknown plan {plan!r}", field="plan")
    workspace.plan = plan
    rbac.db.session.flush()


def add_conflict(rbac: RBACProtocol, actor: Access | None, role_a: Any, role_b: Any) -> Any:
    """Declare two roles that no member may hold together."""
    actor = require(rbac, actor, "roles", "manage")
    same_workspace(actor, role_a, role_b)
    if role_a.id == role_b.id:
        raise ValidationError("a role cannot conflict with itself", field="role_b_id")
    both = set(m.id for m in holders(rbac, role_a)) & set(m.id for m in holders(rbac, role_b))
    if both:
        raise ValidationError(f"{len(both)} member(s) already hold both roles", field="role_b_id")
    a, b = sorted([role_a, role_b], key=lambda r: r.id)
    conflict = rbac.models.RoleConflict(workspace_id=actor.workspace_id, role_a=a, role_b=b)
    rbac.db.session.add(conflict)
    rbac.db.session.flush()
    return conflict


# -- field-level security ---------------------------------------------------


def set_field_rules(rbac: RBACProtocol, role: Any, rules: Mapping[str, Mapping[str, str]]) -> None:
    """Replace a role's field rules: ``{"deals": {"amount": "hidden"}}``.

    Serialised with other writers of the role, like :func:`update_role`.
    """
    label = f"the role {role.name}"
    if role.id is not None:
        with _concurrent_change_refused(label):
            _lock_for_role_change(rbac, role)
    with _concurrent_change_refused(label):
        _set_field_rules(rbac, role, rules)
        rbac.db.session.flush()


def _set_field_rules(rbac: RBACProtocol, role: Any, rules: Mapping[str, Mapping[str, str]]) -> None:
    wanted = []
    for resource, fields in rules.items():
        try:
            res = rbac.registry.get(resource)
        except UnknownResource as exc:
            raise ValidationError(str(exc), field="field_rules") from None
        if res.model is None:
            raise ValidationError(f"{resource} has no fields", field="field_rules")
        columns = sa.inspect(res.model).columns
        protected = {res.workspace_column, res.owner_column, "id"}
        for name, mode in fields.items():
            if name not in columns or name in protected:
                raise ValidationError(f"{resource} has no field {name!r} that can be restricted",
                                      field="field_rules")
            if mode not in FIELD_MODES:
                raise ValidationError(f"field mode must be hidden or readonly, not {mode!r}",
                                      field="field_rules")
            wanted.append((resource, name, mode))
    # Keyed by (resource, field), as the table's unique key: a rule that stays keeps
    # its row (its mode updated in place), so the audit trail sees what changed.
    modes = {(resource, name): mode for resource, name, mode in wanted}
    for rule in list(role.field_rules):
        mode = modes.pop((rule.resource, rule.field), None)
        if mode is None:
            role.field_rules.remove(rule)
        elif rule.mode != mode:
            rule.mode = mode
    for (resource, name), mode in modes.items():
        role.field_rules.append(rbac.models.FieldRule(resource=resource, field=name, mode=mode))


# -- reading -------------------------------------------------------------------


def matrix(rbac: RBACProtocol, role: Any) -> dict[str, dict[str, GrantSpec]]:
    """A role's effective allows as ``{resource: {action: spec}}`` (widest wins)."""
    out: dict[str, dict[str, GrantSpec]] = {}
    for spec in effective_specs(role):
        if spec.effect != "allow":
            continue
        current = out.setdefault(spec.resource, {}).get(spec.action)
        if current is None or SCOPE_RANK[spec.scope] > SCOPE_RANK[current.scope]:
            out[spec.resource][spec.action] = spec
    return out


def compare(rbac: RBACProtocol, roles: Sequence[Any], filter_text: str = "") -> list[dict[str, Any]]:
    """Rows of a side-by-side comparison: one per permission, a cell per role.

    Each row is ``{"permission", "cells": [text or None], "differs": bool}``.
    """
    matrices = [matrix(rbac, r) for r in roles]
    rows = []
    for res in rbac.registry:
        for action in res.actions:
            permission = f"{res.name}.{action}"
            if filter_text and filter_text.lower() not in permission:
                continue
            cells = []
            for role, mx in zip(roles, matrices, strict=True):
                if role.is_owner:
                    cells.append("all")
                    continue
                spec = mx.get(res.name, {}).get(action)
                cells.append(None if spec is None else spec.scope + (
                    f" where {conditions.describe(spec.condition)}" if spec.condition else ""))
            if any(cells):
                rows.append({"permission": permission, "cells": cells,
                             "differs": len(set(cells)) > 1})
    return rows


def roles_granting(rbac: RBACProtocol, workspace_id: int, permission: str) -> list[Any]:
    """Roles of a workspace that allow ``permission`` (directly or inherited)."""
    resource, _, action = permission.rpartition(".")
    rbac.registry.check_action(resource, action)
    Role = rbac.models.Role
    roles = rbac.db.session.scalars(sa.select(Role).where(Role.workspace_id == workspace_id)
                                    .order_by(Role.id))
    return [r for r in roles if r.is_owner or action in matrix(rbac, r).get(resource, {})]


def summary(access: Access | None, rbac: RBACProtocol) -> dict[str, str]:
    """Each permission of ``access`` with the widest scope it reaches.

    Conditions and denies show as a suffix, so a change to them is visible in
    a preview even when the scope stays the same.
    """
    out: dict[str, str] = {}
    if access is None or not access.active:
        return out
    for res in rbac.registry:
        for action in res.actions:
            if access.is_owner:
                out[f"{res.name}.{action}"] = "all"
                continue
            allows, denies = access.rules_for(res.name, action)
            if not allows:
                continue
            best = max(allows, key=lambda r: SCOPE_RANK[r.scope])
            text = best.scope
            if best.conditions:
                text += f" where {conditions.describe(best.conditions)}"
            if denies:
                text += " (with denies)"
            out[f"{res.name}.{action}"] = text
    return out


def preview(rbac: RBACProtocol, role: Any, apply: Any) -> list[dict[str, Any]]:
    """Show which members would gain or lose which permission.

    ``apply()`` makes the change on ``role`` (e.g. a call to
    :func:`update_role`); it runs inside a SAVEPOINT that is always rolled
    back, and every holder of the role or of a role inheriting from it is
    resolved before and after, exactly as the live policy would.
    """
    session = rbac.db.session
    m = rbac.models
    affected_roles = {role.id}
    changed = True
    while changed:
        children = set(session.scalars(sa.select(m.Role.id).where(
            m.Role.parent_id.in_(affected_roles))))
        changed = not children <= affected_roles
        affected_roles |= children
    member_ids = list(session.scalars(sa.select(m.MemberRole.membership_id).where(
        m.MemberRole.role_id.in_(affected_roles)).distinct()))

    def snapshot() -> dict[int, dict[str, str]]:
        out = {}
        for mid in member_ids:
            row = membership_row(session, m, membership_id=mid)
            access = load_access(session, m, rbac.registry, current_app.config, row)
            out[mid] = summary(access, rbac)
        return out

    before = snapshot()
    nested = session.begin_nested()
    try:
        apply()
        session.flush()
        after = snapshot()
    finally:
        nested.rollback()
    result = []
    for mid in member_ids:
        old, new = before[mid], after[mid]
        gained = sorted(f"{p} [{new[p]}]" for p in new if old.get(p) != new[p])
        lost = sorted(f"{p} [{old[p]}]" for p in old if new.get(p) != old[p])
        if gained or lost:
            membership = session.get(m.Membership, mid)
            result.append({"membership_id": mid, "member": membership.display_name,
                           "gained": gained, "lost": lost})
    return result
