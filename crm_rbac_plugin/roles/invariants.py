"""What a change must leave behind: every member a role in force now, every workspace
an active Owner."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import PermissionDenied, RuleConflict
from ..loader import BYPASS
from ..models import utcnow
from .locks import lock_workspace

if TYPE_CHECKING:
    from ..interface import RBACProtocol


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
    lock_workspace(rbac, workspace_id)
    if active_owner_count(rbac, workspace_id, **excluding) < 1:
        raise PermissionDenied("A workspace must always keep at least one active Owner "
                               "(an Owner assignment counts only while it is in force).")
