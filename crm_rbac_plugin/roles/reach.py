"""Whom a role's rules reach, and the rule that none of them narrows an Admin.

A role reaches a member through an assignment (in force or starting later),
through the member's department (a ``DepartmentRole``), and through every
role inheriting from it. Whatever changes what reaches a member (giving a
role, editing or re-parenting one, giving a role to a department, moving a
member into a department) obeys the same rule, :func:`refuse_narrowing`:
``003``'s Owner and Admin "always have full access", and an explicit deny
wins over every allow, so no change may combine a deny with Admin on one
member; it is refused (409) whichever of the two comes second.

"Admin" here is every protected role (:func:`is_protected`): the built-in
Admin and every other privileged role (:func:`.escalation.is_privileged`:
``manage`` on members, roles or settings, inherited grants included), whose
holders are protected as Admins. A deny on such a holder would take away
what makes them one without taking their role, so it is refused the same
way, whoever asks (an Owner included): only taking the role away lifts it.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import PermissionDenied, RuleConflict
from ..models import utcnow
from ..policy import Access
from .escalation import has_full_access, is_privileged, require_covered, same_workspace
from .grants import GrantSpec, effective_specs

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def is_admin(role: Any) -> bool:
    return bool(role.builtin and role.key == "admin")


def is_protected(role: Any) -> bool:
    """Admin or another privileged role (the Owner role aside): no deny reaches its holders."""
    return is_admin(role) or (not role.is_owner and is_privileged(role))


def denies(specs: Iterable[GrantSpec]) -> list[str]:
    return sorted({s.permission for s in specs if s.effect == "deny"})


def department_role_list(rbac: RBACProtocol, department_id: int | None) -> list[Any]:
    """The roles department ``department_id`` gives its members (none for None)."""
    if department_id is None:
        return []
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.Role).join(m.DepartmentRole, m.DepartmentRole.role_id == m.Role.id)
        .where(m.DepartmentRole.department_id == department_id).order_by(m.Role.name)))


def own_roles(membership: Any) -> list[Any]:
    """The roles assigned to ``membership`` that are in force now or start later."""
    now = utcnow()
    return [mr.role for mr in membership.member_roles if mr.active_at(now)
            or (mr.starts_at is not None and mr.starts_at > now)]


def held_roles(rbac: RBACProtocol, membership: Any) -> list[Any]:
    """Every role reaching ``membership``: its own (:func:`own_roles`) and its department's."""
    return [*own_roles(membership), *department_role_list(rbac, membership.department_id)]


def lineage(rbac: RBACProtocol, role: Any) -> list[Any]:
    """``role`` and every role inheriting from it, directly or not."""
    Role = rbac.models.Role
    found, frontier = [role], [role.id]
    seen = {role.id}
    while frontier:
        children = rbac.db.session.scalars(sa.select(Role).where(Role.parent_id.in_(frontier)))
        frontier = []
        for child in children:
            if child.id not in seen:
                seen.add(child.id)
                found.append(child)
                frontier.append(child.id)
    return found


def reached(rbac: RBACProtocol, role: Any) -> list[Any]:
    """The memberships ``role``'s rules reach: holders of it or of a role inheriting from
    it, directly (in force or starting later) or through their department."""
    m, session = rbac.models, rbac.db.session
    role_ids = [r.id for r in lineage(rbac, role)]
    out = {}
    for mr in session.scalars(sa.select(m.MemberRole).where(m.MemberRole.role_id.in_(role_ids))):
        now = utcnow()
        if mr.active_at(now) or (mr.starts_at is not None and mr.starts_at > now):
            out[mr.membership.id] = mr.membership
    departments = sa.select(m.DepartmentRole.department_id).where(
        m.DepartmentRole.role_id.in_(role_ids))
    for member in session.scalars(sa.select(m.Membership).where(
            m.Membership.department_id.in_(departments))):
        out[member.id] = member
    return list(out.values())


def narrowing(held: Sequence[Any], added: Sequence[Any]) -> tuple[str, list[str]] | None:
    """A role of ``held`` + ``added`` denying something to an Admin (a holder of a
    protected role, :func:`is_protected`), where ``added`` brings the protected role or
    the deny: (its name, its denies), or None."""
    if any(is_protected(r) for r in added):
        return _first_deny([*held, *added])
    # The added roles' grants are loaded already; the held roles' grants are read
    # (to know whether one is protected) only when there is a deny to refuse.
    found = _first_deny(added)
    if found is None or not any(is_protected(r) for r in held):
        return None
    return found


def _first_deny(roles: Sequence[Any]) -> tuple[str, list[str]] | None:
    for role in roles:
        found = denies(effective_specs(role))
        if found:
            return role.name, found
    return None


def refuse_narrowing(membership: Any, found: tuple[str, list[str]] | None, *,
                     field: str = "role_id", advice: str = "do not give both to the same "
                     "member") -> None:
    """Raise the 409 of a change that would put a deny on ``membership``, an Admin."""
    if found is None:
        return
    name, denied = found
    raise RuleConflict(
        f"Admins always have full access: {name} denies {', '.join(denied)}, which would "
        f"narrow {membership.display_name} as an Admin. Remove the deny from the role, or "
        f"{advice}.", field=field)


def check_editable(rbac: RBACProtocol, actor: Access, role: Any, what: str) -> None:
    """Refuse changing Owner or Admin, a role wider than the actor, or (unless the actor
    is an Owner) a privileged role some member holds (its holders are protected as
    Admins) or a role reaching the actor themselves: editing, conditioning or deleting
    it would change their own access (lift a deny on them), which only an Owner does."""
    same_workspace(actor, role)
    if has_full_access(role):
        raise PermissionDenied(f"The {role.name} role always has full access; it cannot be {what}.")
    require_covered(actor, effective_specs(role), f"change {role.name}, which is wider than you")
    if actor.is_owner:
        return
    holders = reached(rbac, role)
    if is_privileged(role) and holders:
        raise PermissionDenied(f"Only an Owner can change {role.name}: it manages members, roles "
                               "or settings, and members hold it.")
    if any(member.id == actor.membership_id for member in holders):
        raise PermissionDenied(f"You cannot change {role.name}: it reaches you (directly, "
                               "through your department or a role inheriting from it), and "
                               "you cannot change your own roles.")
