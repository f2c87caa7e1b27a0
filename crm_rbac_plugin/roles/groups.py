"""Roles given to a department, and conditions on a role.

A department's role is held by every member of the department while they
belong to it (:mod:`..models.groups`); the loader reads it with the member's
own assignments, so joining or leaving the department is the only write
needed, and that write bumps the workspace's ``policy_version`` like any
permission change. Giving a role to a department is giving it to each of its
members at once, now and later, so the escalation rules of
:func:`.assignments.assign_role` apply to whoever gives it, and again to
whoever moves a member into a department that holds roles
(:func:`check_joining`):

- the Owner role is never given to a department (an Owner is a person);
- Admin (privileged roles) only by an Owner;
- never a role wider than the actor holds (:func:`.escalation.require_covered`);
- never a role some member of the department may not hold with one of theirs
  (segregation of duties);
- a role needing approval when given to one member is refused for a
  department (409), and so is moving a member into a department that gives
  one: give it member by member, through the approval;
- never a deny to a member who is an Admin, nor Admin to a member a role of
  the department denies something (:mod:`.reach`, 409);
- giving or taking a department's role changes every member of it, so the
  actor must manage each of them (:func:`require_department_in_reach`): a
  Manager acts on their team, not on a whole department around it.

Every grant and removal is audited by the flush listeners as
``department_role.added`` / ``department_role.removed``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import gate
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from ..workspaces import default_expiry
from .assignments import condition_for, needs_approval_as_privileged
from .duties import refuse_conflicts
from .escalation import (
    is_privileged,
    member_in_scope,
    require,
    require_covered,
    require_role_covered,
    same_workspace,
)
from .grants import effective_specs
from .locks import concurrent_change_refused, lock_for_role_change
from .reach import (
    check_editable,
    held_roles,
    narrowing,
    own_roles,
    reached,
    refuse_narrowing,
)

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def department_roles(rbac: RBACProtocol, department: Any) -> list[Any]:
    """The roles a department gives (its ``DepartmentRole`` rows, by role name)."""
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.DepartmentRole).join(m.Role, m.Role.id == m.DepartmentRole.role_id)
        .where(m.DepartmentRole.department_id == department.id).order_by(m.Role.name)))


def member_group_roles(rbac: RBACProtocol, membership: Any) -> list[Any]:
    """The ``DepartmentRole`` rows a member holds through their department."""
    if membership.department_id is None:
        return []
    return department_roles(rbac, membership.department)


def _check_giver(actor: Access, role: Any, what: str) -> None:
    if role.is_owner:
        raise ValidationError("the Owner role is held by a person, never through a department",
                              field="role_id")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can give the {role.name} role.")
    require_role_covered(actor, role, what)


def require_department_in_reach(rbac: RBACProtocol, actor: Access, department: Any,
                                what: str) -> None:
    """Refuse (403) a change to ``department``'s roles unless the actor manages every member.

    A department's role is held by each of its members, so giving or taking
    it changes each of them: the actor's ``members.edit`` must reach all of
    them (``all`` scope reaches everyone, as an Owner does). An actor who
    belongs to the department would change their own roles, which only an
    Owner does.
    """
    if department.id == actor.department_id and not actor.is_owner:
        raise PermissionDenied(f"You cannot {what}: you belong to {department.name}, and you "
                               "cannot change your own roles.", resource="members", action="edit")
    m = rbac.models
    members = rbac.db.session.scalars(sa.select(m.Membership).where(
        m.Membership.department_id == department.id).order_by(m.Membership.id))
    outside = [member.display_name for member in members
               if not member_in_scope(actor, "edit", member)]
    if outside:
        raise PermissionDenied(
            f"You cannot {what}: it would change {', '.join(outside)}, who are not among "
            "the members you manage.", resource="members", action="edit")


def give_department_role(rbac: RBACProtocol, actor: Access | None, department: Any, role: Any,
                         *, condition: Any = None) -> Any:
    """Give ``role`` to every member of ``department`` while they belong to it."""
    actor = require(rbac, actor, "members", "edit")
    if department is None or role is None:
        raise ValidationError("choose a department and a role", field="role_id")
    same_workspace(actor, department, role)
    require_department_in_reach(rbac, actor, department, f"give {role.name} to {department.name}")
    _check_giver(actor, role, f"give {role.name} to {department.name}")
    if default_expiry(role) is not None:
        # A department's role has no end: a temporary role would outlive its limit.
        raise ValidationError(f"{role.name} ends by itself after a set time; give it to the "
                              "members one by one, each with its end", field="role_id")
    cond = condition_for(role, condition)
    m, session = rbac.models, rbac.db.session
    if session.scalar(sa.select(m.DepartmentRole.id).where(
            m.DepartmentRole.department_id == department.id,
            m.DepartmentRole.role_id == role.id)) is not None:
        raise ValidationError(f"{department.name} already gives {role.name}", field="role_id")
    members = session.scalars(sa.select(m.Membership).where(
        m.Membership.department_id == department.id)).all()
    for member in members:
        refuse_conflicts(rbac, member, [role], held_roles(rbac, member),
                         f" through {department.name}")
        refuse_narrowing(member, narrowing(held_roles(rbac, member), [role]),
                         advice=f"do not give it to {department.name}")
    if needs_approval_as_privileged(role):
        gate.require(rbac, actor, "assign_privileged_role",
                     {"department_id": department.id, "role_id": role.id},
                     summary=f"Give {role.name} to department {department.name}",
                     refusal=(f"Giving {role.name} needs approval in this workspace: give it to "
                              "members one by one instead of to a department.", "role_id"))
    row = m.DepartmentRole(workspace_id=department.workspace_id, department=department,
                           role=role, access_condition=cond.to_json())
    session.add(row)
    session.flush()
    return row


def remove_department_role(rbac: RBACProtocol, actor: Access | None, row: Any) -> None:
    """Take a role away from a department (its members lose it at once)."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, row)
    role = row.role
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can take the {role.name} role away.")
    require_department_in_reach(rbac, actor, row.department,
                                f"take {role.name} away from {row.department.name}")
    require_covered(actor, effective_specs(role), f"take {role.name} away")
    rbac.db.session.delete(row)
    rbac.db.session.flush()


def check_joining(rbac: RBACProtocol, actor: Access, membership: Any, department: Any, *,
                  placed: bool = False) -> None:
    """Refuse moving ``membership`` into ``department`` when that gives them roles the
    actor could not give them one by one (see the module docstring).

    ``placed``: the membership was created in ``department`` (an invitation,
    whose roles are given once it is there), so it is checked though it is
    already in it.
    """
    if department is None or (department.id == membership.department_id and not placed):
        return
    given = [row.role for row in department_roles(rbac, department)]
    for role in given:
        _check_giver(actor, role, f"move {membership.display_name} into {department.name}, "
                                  f"which gives {role.name}")
    refuse_conflicts(rbac, membership, given, own_roles(membership), f" in {department.name}")
    refuse_narrowing(membership, narrowing(own_roles(membership), given), field="department_id",
                     advice=f"do not move them into {department.name}")
    privileged = [role.name for role in given if needs_approval_as_privileged(role)]
    if privileged:
        gate.require(rbac, actor, "assign_privileged_role", {},
                     refusal=(f"Moving {membership.display_name} into {department.name}, which "
                              f"gives {', '.join(privileged)}, needs approval in this workspace: "
                              "give the role to them one by one instead.", "department_id"))


def set_role_condition(rbac: RBACProtocol, actor: Access | None, role: Any,
                       condition: Any) -> Any:
    """Replace the condition under which ``role`` is in force for all its holders.

    The Owner and Admin roles always have full access and take no condition;
    otherwise the rules of editing the role apply (``roles.edit``, no role
    wider than the actor).
    """
    actor = require(rbac, actor, "roles", "edit")
    label = f"the role {role.name}"
    with concurrent_change_refused(label):
        lock_for_role_change(rbac, role)
    check_editable(rbac, actor, role, "made conditional")
    new = condition_for(role, condition).to_json()
    if new != role.access_condition and needs_approval_as_privileged(role):
        holding = reached(rbac, role)
        if holding:  # loosening the condition widens what its holders were given
            gate.require(rbac, actor, "assign_privileged_role", {}, refusal=(
                f"Changing when {role.name} applies needs approval in this workspace while "
                f"{len(holding)} member(s) hold it: give a new role with the condition to "
                "them one by one instead.", "condition"))
    role.access_condition = new
    rbac.db.session.flush()
    return role
