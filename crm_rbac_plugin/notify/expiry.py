"""Role assignments about to end: told once each, by the worker.

:func:`scan_expiring` (run by ``flask rbac notify send``, so from cron)
queues a *role expiring* notification for every assignment in force whose
``expires_at`` falls within ``RBAC_NOTIFY_EXPIRY_DAYS`` of now, for an
active member. The row's ``dedupe_key`` names the assignment and its end,
and a unique constraint on (member, key) backs the check: an assignment is
never told twice, however often the scan runs or how many run at once. An
assignment whose end is moved is told again, about its new end.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError

from ..config import setting
from ..loader import BYPASS
from ..models import utcnow
from .queue import enqueue, path_for

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def expiry_key(member_role_id: int, expires_at: dt.datetime) -> str:
    """The dedupe key of the expiry notice of one assignment ending at ``expires_at``."""
    return f"role.expiring:{member_role_id}:{expires_at:%Y%m%d%H%M%S}"


def scan_expiring(rbac: RBACProtocol, *, now: dt.datetime | None = None) -> int:
    """Queue the notices of assignments ending soon and not told yet; return how many."""
    now = now or utcnow()
    m = rbac.models
    MR, M, R, N, W = m.MemberRole, m.Membership, m.Role, m.Notification, m.Workspace
    horizon = now + dt.timedelta(days=int(setting("RBAC_NOTIFY_EXPIRY_DAYS")))
    session = rbac.db.session
    rows = session.execute(
        sa.select(MR.id, MR.expires_at, M.id, M.workspace_id, R.name, W.name)
        .join(M, M.id == MR.membership_id).join(R, R.id == MR.role_id)
        .join(W, W.id == M.workspace_id)
        .where(MR.expires_at > now, MR.expires_at <= horizon, M.status == "active",
               sa.or_(MR.starts_at.is_(None), MR.starts_at <= now))
        .order_by(MR.id), execution_options=BYPASS).all()
    queued = 0
    for mr_id, expires_at, membership_id, workspace_id, role_name, ws_name in rows:
        key = expiry_key(mr_id, expires_at)
        told = session.scalar(sa.select(N.id).where(N.membership_id == membership_id,
                                                    N.dedupe_key == key),
                              execution_options=BYPASS)
        if told is not None:
            continue
        queued += len(enqueue(
            session, m, workspace_id=workspace_id, recipients=[membership_id],
            category="roles", event_name="role.expiring", dedupe_key=key,
            summary=f"Your role {role_name} in {ws_name} ends on "
                    f"{expires_at:%Y-%m-%d %H:%M} UTC.",
            link=path_for("rbac_settings.profile")))
    try:
        session.commit()
    except IntegrityError:  # another scan told them in the meantime
        session.rollback()
        return 0
    return queued
