"""Create, edit, clone and delete roles: names, parents and matrices."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import conditions, gate, inputs
from ..errors import PermissionDenied, RuleConflict, ValidationError
from ..guard import POLICY_WORKSPACES
from ..policy import Access
from .assignments import assign_role, holders, needs_approval_as_privileged
from .duties import check_reparented
from .escalation import (
    approver_permissions,
    is_privileged,
    loosened,
    privileged_specs,
    require,
    require_covered,
    same_workspace,
)
from .field_rules import (
    chain_modes,
    copied_field_rules,
    flat_modes,
    own_modes,
    replace_field_rules,
    role_field_modes,
)
from .grants import GrantSpec, effective_specs, merge_specs, specs_of
from .groups import give_department_role
from .invariants import ROLE_REMAINS_RULE, assignments_in_force
from .locks import concurrent_change_refused, lock_for_role_change
from .reach import check_editable, denies, held_roles, is_protected, reached, refuse_narrowing

if TYPE_CHECKING:
    from ..interface import RBACProtocol


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


def _check_flag(value: Any, field: str) -> bool:
    if not isinstance(value, bool):
        raise ValidationError(f"{field} must be true or false", field=field)
    return value


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
                field_rules: Mapping[str, Mapping[str, str]] | None = None,
                sign_in: bool = True, api_access: bool = True) -> Any:
    """Create a custom role in the actor's workspace; ``sign_in`` False makes its
    members use the workspace through API tokens only, ``api_access`` False through
    a browser session only (:mod:`..security.signin`)."""
    actor = require(rbac, actor, "roles", "create")
    name = _check_name(rbac, actor.workspace_id, name)
    _check_parent(rbac, actor, None, parent)
    inherited = effective_specs(parent) if parent is not None else []
    require_covered(actor, [*grants, *inherited], "create this role",
                    chain_modes(flat_modes(field_rules or {}), parent))
    role = rbac.models.Role(workspace_id=actor.workspace_id, name=name,
                            description=description or "", builtin=False, parent=parent,
                            sign_in=_check_flag(sign_in, "sign_in"),
                            api_access=_check_flag(api_access, "api_access"))
    rbac.db.session.add(role)
    with concurrent_change_refused("this workspace's roles"):
        _set_grants(rbac, role, grants)
        if field_rules:
            replace_field_rules(rbac, role, field_rules)
        rbac.db.session.flush()
    return role


def _narrowed(rbac: RBACProtocol, member: Any, role: Any, specs: Sequence[GrantSpec],
              added: list[str], widened: bool) -> tuple[str, list[str]] | None:
    """The deny an edit giving ``role`` the ``specs`` would put on ``member`` as a holder of
    a protected role (:func:`.reach.is_protected`): (the role's name, its denies), or None.

    A protected member gains no deny (``added``); a role made privileged
    (``widened``) makes its holders protected, so no role they hold may deny.
    """
    held = held_roles(rbac, member)
    if not widened:
        return (role.name, added) if added and any(is_protected(r) for r in held) else None
    own = denies(specs)
    if own:
        return role.name, own
    return next(((r.name, denies(effective_specs(r))) for r in held
                 if r.id != role.id and denies(effective_specs(r))), None)


def _check_reach(rbac: RBACProtocol, actor: Access, role: Any, specs: Sequence[GrantSpec]) -> None:
    """Refuse an edit giving ``role`` the effective ``specs`` when that would narrow an Admin
    it reaches (409), or make it privileged while it reaches members: only an Owner may
    (403), and through the approval policy's "assigning a privileged role" (409).

    Editing a role changes the access of every member it reaches (:func:`.reach.reached`),
    so it obeys the rules of giving them the role.
    """
    old = effective_specs(role)
    added = sorted({s.permission for s in set(specs) - set(old) if s.effect == "deny"})
    widened = privileged_specs(specs, approver_permissions(role)) and not is_privileged(role)
    if not added and not widened:
        return
    members = reached(rbac, role)
    for member in members:
        refuse_narrowing(member, _narrowed(rbac, member, role, specs, added, widened),
                         field="grants", advice=f"take {role.name} from them first")
    if widened and members:
        if not actor.is_owner:
            raise PermissionDenied(f"Only an Owner can let {role.name} manage members, roles or "
                                   "settings, or decide approvals, while members hold it.")
        gate.require(rbac, actor, "assign_privileged_role", {}, refusal=(
            f"Letting {role.name} manage members, roles or settings needs approval in this "
            f"workspace while {len(members)} member(s) hold it: give a new role with it to "
            "them one by one instead.", "grants"))


def update_role(rbac: RBACProtocol, actor: Access | None, role: Any, *, name: str | None = None,
                description: str | None = None, grants: Sequence[GrantSpec] | None = None,
                parent: Any = ..., field_rules: Mapping[str, Mapping[str, str]] | None = None,
                sign_in: bool | None = None, api_access: bool | None = None) -> Any:
    """Rename, describe, re-parent, replace the matrix of a role, or let its members
    sign in or use the API or not (``sign_in``, ``api_access``; None leaves each).

    Concurrent updates of one role are serialised
    (:func:`.locks.lock_for_role_change`): the role ends with exactly the last
    committed submission, never a mix.
    """
    actor = require(rbac, actor, "roles", "edit")
    label = f"the role {role.name}"
    with concurrent_change_refused(label):
        lock_for_role_change(rbac, role)
    check_editable(rbac, actor, role, "edited")
    new_name = _check_name(rbac, role.workspace_id, name, role.id) if name is not None else None
    new_parent = role.parent if parent is ... else parent
    if parent is not ...:
        _check_parent(rbac, actor, role, parent)
    new_grants = list(grants) if grants is not None else specs_of(role)
    inherited = effective_specs(new_parent) if new_parent is not None else []
    new_modes = chain_modes(own_modes(role) if field_rules is None else flat_modes(field_rules),
                            new_parent)
    # What the role showed past the actor before the edit is not theirs to close
    # or keep open: only what the edit itself loosens is refused.
    require_covered(actor, [*new_grants, *inherited], f"give {role.name} these permissions",
                    new_modes, kept=loosened(actor, effective_specs(role), role_field_modes(role)))
    if grants is not None or parent is not ...:
        _check_reach(rbac, actor, role, [*new_grants, *inherited])
    if new_name is not None:
        role.name = new_name
    if description is not None:
        role.description = description
    if sign_in is not None:
        role.sign_in = _check_flag(sign_in, "sign_in")
    if api_access is not None:
        role.api_access = _check_flag(api_access, "api_access")
    with concurrent_change_refused(label):
        if parent is not ...:
            role.parent = parent
            check_reparented(rbac, role)
        if grants is not None:
            _set_grants(rbac, role, new_grants)
        if field_rules is not None:
            replace_field_rules(rbac, role, field_rules)
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
    lock_for_role_change(rbac, source)
    return create_role(rbac, actor, name=name,
                       description=source.description if description is None else description,
                       grants=merge_specs(effective_specs(source)), parent=None,
                       field_rules=copied_field_rules(source), sign_in=source.sign_in,
                       api_access=source.api_access)


def _move_departments(rbac: RBACProtocol, actor: Access, role: Any, move_to: Any) -> None:
    """Take ``role`` from the departments giving it; with ``move_to``, each gives that
    instead (under the rules of giving a role to a department)."""
    m = rbac.models
    for row in list(rbac.db.session.scalars(
            sa.select(m.DepartmentRole).where(m.DepartmentRole.role_id == role.id))):
        gives = {r.role_id for r in rbac.db.session.scalars(sa.select(m.DepartmentRole).where(
            m.DepartmentRole.department_id == row.department_id))}
        department = row.department
        rbac.db.session.delete(row)
        if move_to is not None and move_to.id not in gives:
            give_department_role(rbac, actor, department, move_to)


def delete_role(rbac: RBACProtocol, actor: Access | None, role: Any, *, move_to: Any = None) -> None:
    """Delete a role; its holders move to ``move_to`` or must hold another role, and the
    departments giving it give ``move_to`` instead, or nothing."""
    actor = require(rbac, actor, "roles", "delete")
    check_editable(rbac, actor, role, "deleted")
    m = rbac.models
    if move_to is not None:
        same_workspace(actor, move_to)
        if move_to.id == role.id:
            raise ValidationError("move members to a different role", field="move_to")
    if move_to is not None and needs_approval_as_privileged(move_to):
        gate.require(rbac, actor, "assign_privileged_role", {}, refusal=(
            f"Moving members to {move_to.name} needs approval: move them to another role, "
            f"or give them {move_to.name} one by one.", "move_to"))
    gate.require(rbac, actor, "delete_role",
                 {"role_id": role.id, "move_to_id": move_to.id if move_to is not None else None},
                 summary=f"Delete the role {role.name}")
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
    _move_departments(rbac, actor, role, move_to)
    for child in rbac.db.session.scalars(sa.select(m.Role).where(m.Role.parent_id == role.id)):
        child.parent = None
    for mr in rbac.db.session.scalars(sa.select(m.MemberRole).where(m.MemberRole.role_id == role.id)):
        rbac.db.session.delete(mr)
    rbac.db.session.execute(sa.delete(m.RoleConflict).where(
        sa.or_(m.RoleConflict.role_a_id == role.id, m.RoleConflict.role_b_id == role.id)),
        execution_options={POLICY_WORKSPACES: (role.workspace_id,)})
    rbac.db.session.delete(role)
    rbac.db.session.flush()
