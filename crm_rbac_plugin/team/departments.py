"""Departments, per-member visibility and manager assignments.

All three shape what a member sees: a department and a manager assignment
feed the ``department`` and ``team`` scopes, a visibility level caps a
member's scopes. Each change needs ``members.edit`` whose scope reaches every
member it touches (:func:`..roles.require_member_in_scope`: a Manager changes
their team only); creating, renaming and deleting departments shape the whole
workspace, so they need it over every member. Only an Owner moves another
Owner or Admin, changes their visibility, moves themselves, changes their own
visibility, or widens their own team: each would widen the actor's own reach.
Whoever lifts a visibility cap or puts a member in someone's team gives access
as a role does, so they must hold what it gives (:func:`_require_gives_no_more`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import inputs
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from ..roles import (
    check_joining,
    held_roles,
    manages_everyone,
    require_member_in_scope,
    require_role_covered,
)
from .checks import privileged, require, same_workspace

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["VISIBILITY_LEVELS", "assign_to_manager", "assigned_members", "create_department",
           "delete_department", "department_holders", "department_members", "rename_department",
           "set_department", "set_visibility", "unassign_from_manager", "workspace_departments"]


def _department_name(rbac: RBACProtocol, workspace_id: int, name: Any, dept_id: int | None = None) -> str:
    if not isinstance(name, str) or not name.strip() or len(name.strip()) > 120:
        raise ValidationError("a department needs a name of 1 to 120 characters", field="name")
    name = name.strip()
    inputs.check_unique_name(rbac.db.session, rbac.models.Department, workspace_id, name,
                             dept_id, "department")
    return name


def _require_everyone(rbac: RBACProtocol, actor: Access | None, what: str) -> Access:
    actor = require(rbac, actor, "members", "edit")
    if not manages_everyone(actor):
        raise PermissionDenied(f"You cannot {what}: departments shape the whole workspace, "
                               "and your members.edit does not reach every member.",
                               resource="members", action="edit")
    return actor


def _require_gives_no_more(rbac: RBACProtocol, actor: Access, membership: Any, what: str) -> None:
    """Refuse unless the actor holds what each role reaching ``membership`` grants and
    shows: lifting a cap or widening a team lets those roles reach further."""
    if actor.is_owner:
        return
    for role in held_roles(rbac, membership):
        require_role_covered(actor, role, f"{what} ({membership.display_name} holds {role.name})")


def create_department(rbac: RBACProtocol, actor: Access | None, name: str) -> Any:
    actor = _require_everyone(rbac, actor, "create a department")
    dept = rbac.models.Department(workspace_id=actor.workspace_id,
                                  name=_department_name(rbac, actor.workspace_id, name))
    rbac.db.session.add(dept)
    rbac.db.session.flush()
    return dept


def rename_department(rbac: RBACProtocol, actor: Access | None, dept: Any, name: str) -> None:
    actor = _require_everyone(rbac, actor, "rename a department")
    same_workspace(actor, dept)
    dept.name = _department_name(rbac, actor.workspace_id, name, dept.id)
    rbac.db.session.flush()


def workspace_departments(rbac: RBACProtocol, workspace_id: int) -> list[Any]:
    """The workspace's departments by name."""
    D = rbac.models.Department
    return list(rbac.db.session.scalars(sa.select(D).where(D.workspace_id == workspace_id)
                                        .order_by(D.name)))


def department_members(rbac: RBACProtocol, dept: Any) -> list[Any]:
    M = rbac.models.Membership
    return list(rbac.db.session.scalars(sa.select(M).where(M.department_id == dept.id)
                                        .order_by(M.id)))


def department_holders(rbac: RBACProtocol, role: Any) -> list[tuple[Any, list[Any]]]:
    """The departments giving ``role``, each with its members, by name."""
    m = rbac.models
    departments = rbac.db.session.scalars(
        sa.select(m.Department).join(m.DepartmentRole,
                                     m.DepartmentRole.department_id == m.Department.id)
        .where(m.DepartmentRole.role_id == role.id).order_by(m.Department.name)).all()
    return [(dept, department_members(rbac, dept)) for dept in departments]


def delete_department(rbac: RBACProtocol, actor: Access | None, dept: Any) -> None:
    """Delete an empty department (members move first)."""
    actor = _require_everyone(rbac, actor, "delete a department")
    same_workspace(actor, dept)
    if department_members(rbac, dept):
        raise ValidationError(f"{dept.name} still has members; move members first",
                              field="department")
    rbac.db.session.delete(dept)
    rbac.db.session.flush()


def set_department(rbac: RBACProtocol, actor: Access | None, membership: Any, dept: Any) -> None:
    """Move a member into ``dept`` (None: out of every department).

    A member's department feeds their own ``department`` scopes, so a
    non-Owner never moves themselves, and moves someone else only while
    holding what each of their roles grants: the move points those scopes at
    another department's records, as lifting a cap lets them reach further.
    """
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership, dept)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own department.")
    if privileged(rbac, membership) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can move an Owner or an Admin.")
    require_member_in_scope(actor, "edit", membership)
    if (dept.id if dept is not None else None) != membership.department_id:
        _require_gives_no_more(rbac, actor, membership,
                               f"move them into {dept.name if dept is not None else 'no department'}")
    check_joining(rbac, actor, membership, dept)
    membership.department_id = dept.id if dept is not None else None
    rbac.db.session.flush()


#: Per-member visibility levels (seed: All / Department / Own); None: as the roles grant.
VISIBILITY_LEVELS: tuple[str, ...] = ("all", "department", "own")
#: How far each level lets a member's roles reach (None: no cap).
_RANK: dict[str | None, int] = {"own": 0, "department": 1, "all": 2, None: 3}


def set_visibility(rbac: RBACProtocol, actor: Access | None, membership: Any, level: str | None) -> None:
    """Cap what a member sees to a visibility level (Owners always see all)."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership)
    if level is not None and level not in VISIBILITY_LEVELS:
        raise ValidationError(f"visibility must be one of {', '.join(VISIBILITY_LEVELS)}",
                              field="visibility")
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own visibility.")
    if privileged(rbac, membership) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can change an Owner's or an Admin's visibility.")
    require_member_in_scope(actor, "edit", membership)
    if _RANK[level] > _RANK[membership.visibility]:
        if _RANK[level] > _RANK[actor.visibility]:
            raise PermissionDenied("You cannot widen a member's visibility past your own.")
        _require_gives_no_more(rbac, actor, membership, "widen their visibility")
    membership.visibility = level
    rbac.db.session.flush()


def assigned_members(rbac: RBACProtocol, manager: Any) -> list[Any]:
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.Membership).join(m.ManagerAssignment,
                                     m.ManagerAssignment.member_id == m.Membership.id)
        .where(m.ManagerAssignment.manager_id == manager.id).order_by(m.Membership.id)))


def assign_to_manager(rbac: RBACProtocol, actor: Access | None, manager: Any, member: Any) -> Any:
    """Let ``manager`` see and edit ``member``'s records (the ``team`` scope).

    The link changes both members' access, so the actor must manage both.
    """
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, manager, member)
    if manager.id == member.id:
        raise ValidationError("a member cannot manage themselves", field="member_id")
    if manager.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot widen your own team.")
    require_member_in_scope(actor, "edit", manager)
    require_member_in_scope(actor, "edit", member)
    if privileged(rbac, member) and not actor.is_owner:
        raise PermissionDenied("Only an Owner can put an Owner or an Admin in a team.")
    _require_gives_no_more(rbac, actor, manager, f"widen {manager.display_name}'s team")
    A = rbac.models.ManagerAssignment
    if rbac.db.session.get(A, (manager.id, member.id)) is not None:
        raise ValidationError(f"{member.display_name} is already assigned", field="member_id")
    row = A(manager_id=manager.id, member_id=member.id)
    rbac.db.session.add(row)
    rbac.db.session.flush()
    return row


def unassign_from_manager(rbac: RBACProtocol, actor: Access | None, manager: Any, member: Any) -> None:
    """End ``manager``'s link to ``member`` (the actor must manage both, as to make it)."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, manager, member)
    require_member_in_scope(actor, "edit", manager)
    require_member_in_scope(actor, "edit", member)
    A = rbac.models.ManagerAssignment
    row = rbac.db.session.get(A, (manager.id, member.id))
    if row is None:
        raise ValidationError(f"{member.display_name} is not assigned", field="member_id")
    rbac.db.session.delete(row)
    rbac.db.session.flush()
