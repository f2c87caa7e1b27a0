"""Access review: the report an Owner reads before re-certifying access."""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import queries
from ..models import utcnow

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def access_review(rbac: RBACProtocol, workspace_id: int, *, inactive_days: int = 30,
                  expiring_days: int = 14, now: dt.datetime | None = None) -> dict[str, Any]:
    """Return privileged members (Owner/Admin), members not seen for ``inactive_days``
    (or never), roles nobody holds, and assignments ending within ``expiring_days``."""
    now = now or utcnow()
    m = rbac.models
    memberships = queries.workspace_memberships(rbac, workspace_id)
    privileged = []
    for mem in memberships:
        keys = {mr.role.key for mr in mem.member_roles
                if mr.active_at(now) and mr.role is not None}
        if mem.status == "active" and keys & {"owner", "admin"}:
            privileged.append({"membership": mem, "roles": sorted(
                mr.role.name for mr in mem.member_roles if mr.role.key in ("owner", "admin"))})
    cutoff = now - dt.timedelta(days=inactive_days)
    inactive = [mem for mem in memberships if mem.status == "active"
                and (mem.last_seen_at is None or mem.last_seen_at < cutoff)]
    counts = queries.member_counts(rbac, workspace_id)
    unused = [r for r in queries.workspace_roles(rbac, workspace_id) if not counts.get(r.id)]
    horizon = now + dt.timedelta(days=expiring_days)
    expiring = rbac.db.session.scalars(
        sa.select(m.MemberRole).join(m.Membership, m.Membership.id == m.MemberRole.membership_id)
        .where(m.Membership.workspace_id == workspace_id, m.MemberRole.expires_at.is_not(None),
               m.MemberRole.expires_at > now, m.MemberRole.expires_at <= horizon)
        .order_by(m.MemberRole.expires_at)).all()
    return {"privileged": privileged, "inactive": inactive, "unused_roles": unused,
            "expiring": expiring, "now": now}
