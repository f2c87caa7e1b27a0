"""Access review: the report an Owner reads before re-certifying access, and the sign-off.

The report lists privileged members (Owner, Admin), members not seen for a
number of days, members who never signed in (a separate list: an invitation
accepted but never used is not the same finding as a member gone quiet),
roles nobody holds and assignments ending soon.

Signing a member off records that a reviewer looked at their access and
kept it: it is an audit event (``member.signed_off``, with the membership id
and the roles held), so "last signed off by X on D" is read back from the
trail, which is append-only, and needs no table of its own. Nobody signs off
their own access: a review is a second pair of eyes.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import queries
from ..errors import PermissionDenied, ValidationError
from ..models import utcnow
from ..policy import Access
from ..roles import require, same_workspace
from ..roles.reach import department_role_list

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["SIGN_OFF_ACTION", "SignOff", "access_review", "last_sign_offs", "sign_off"]

#: The audit action that records a sign-off.
SIGN_OFF_ACTION = "member.signed_off"


@dataclass(frozen=True)
class SignOff:
    """Who last signed a member's access off, and when (UTC)."""

    by: str
    at: dt.datetime


def access_review(rbac: RBACProtocol, workspace_id: int, *, inactive_days: int = 30,
                  expiring_days: int = 14, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return privileged members (Owner/Admin), active members not seen for
    ``inactive_days``, active members never seen, roles nobody holds, and
    assignments ending within ``expiring_days``."""
    now = now or utcnow()
    m = rbac.models
    memberships = queries.workspace_memberships(rbac, workspace_id)
    privileged = []
    by_department: dict[int, list[Any]] = {}
    for mem in memberships:
        # The roles in force: their own, and their department's.
        if mem.department_id is not None and mem.department_id not in by_department:
            by_department[mem.department_id] = department_role_list(rbac, mem.department_id)
        held = [mr.role for mr in mem.member_roles if mr.active_at(now) and mr.role is not None]
        held += by_department.get(mem.department_id, []) if mem.department_id else []
        names = sorted({r.name for r in held if r.key in ("owner", "admin")})
        if mem.status == "active" and names:
            privileged.append({"membership": mem, "roles": names})
    cutoff = now - dt.timedelta(days=inactive_days)
    active = [mem for mem in memberships if mem.status == "active"]
    inactive = [mem for mem in active if mem.last_seen_at is not None
                and mem.last_seen_at < cutoff]
    never = [mem for mem in active if mem.last_seen_at is None]
    counts = queries.member_counts(rbac, workspace_id)
    unused = [r for r in queries.workspace_roles(rbac, workspace_id) if not counts.get(r.id)]
    horizon = now + dt.timedelta(days=expiring_days)
    expiring = rbac.db.session.scalars(
        sa.select(m.MemberRole).join(m.Membership, m.Membership.id == m.MemberRole.membership_id)
        .where(m.Membership.workspace_id == workspace_id, m.MemberRole.expires_at.is_not(None),
               m.MemberRole.expires_at > now, m.MemberRole.expires_at <= horizon)
        .order_by(m.MemberRole.expires_at)).all()
    return {"privileged": privileged, "inactive": inactive, "never_signed_in": never,
            "unused_roles": unused, "expiring": expiring, "active": active, "now": now}


def sign_off(rbac: RBACProtocol, actor: Access | None, membership: Any) -> Any:
    """Record that ``actor`` reviewed ``membership``'s access and keeps it (an audit event).

    Needs ``settings.view`` (the review's own right); refuses one's own
    access and a member who has not joined.
    """
    actor = require(rbac, actor, "settings", "view")
    same_workspace(actor, membership)
    if membership.id == actor.membership_id:
        raise PermissionDenied("You cannot sign off your own access; another reviewer does.")
    if membership.status == "pending":
        raise ValidationError(f"{membership.display_name} has not joined yet", field="membership")
    held = sorted(mr.role.name for mr in _in_force(membership))
    return rbac.audit(SIGN_OFF_ACTION, workspace_id=actor.workspace_id, resource="members",
                      target=membership.display_name, after={"roles": held},
                      membership_id=membership.id, actor_ids=(actor.user_id, actor.membership_id))


def _in_force(membership: Any) -> list[Any]:
    """The member's role assignments in force now (what the sign-off attests)."""
    now = utcnow()
    return [mr for mr in membership.member_roles if mr.active_at(now) and mr.role is not None]


def last_sign_offs(rbac: RBACProtocol, workspace_id: int) -> dict[int, SignOff]:
    """The latest sign-off of each member of the workspace, by membership id."""
    A, M = rbac.models.AuditEvent, rbac.models.Membership
    events = rbac.db.session.scalars(sa.select(A).where(
        A.workspace_id == workspace_id, A.action == SIGN_OFF_ACTION).order_by(A.at.desc(),
                                                                                A.id.desc()))
    names = {mem.id: mem.display_name for mem in rbac.db.session.scalars(
        sa.select(M).where(M.workspace_id == workspace_id))}
    out: dict[int, SignOff] = {}
    for ev in events:
        mid = (ev.detail or {}).get("membership_id")
        if isinstance(mid, int) and mid not in out:
            out[mid] = SignOff(by=names.get(ev.actor_membership_id or -1, "a former member"),
                               at=ev.at)
    return out
