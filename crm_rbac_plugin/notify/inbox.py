"""A member's own notifications: the list, the unread count, marking read.

Every function takes the member's own membership id (from their access,
never from the request) and filters on it, so a member reaches only their
own rows: another member's id is "not found" (None), never read or changed.
The unread count is one ``count(*)`` over the ``(membership_id, read_at)``
index, cheap enough for the bell on every page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import NoAccessContext
from ..identity import request_state, signed_in_user
from ..models import utcnow
from ..policy import Access

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Rows a page or an API call lists at most.
PAGE_SIZE = 50


def own_access(rbac: RBACProtocol) -> Access | None:
    """The signed-in member's own active access, or None.

    While an Owner views the app as another member, this is the Owner's own:
    a member's notifications are theirs alone, never shown to a viewer.
    """
    try:
        access = rbac.current_access() if signed_in_user() is not None else None
    except NoAccessContext:
        return None
    real = request_state().real_access
    if real is not None:
        access = real
    if access is None or not access.active or access.membership_id is None:
        return None
    return access


#: The unread count stops at this: a page never counts a longer backlog (the bell shows "999+").
UNREAD_CAP = 999


def unread_count(rbac: RBACProtocol, membership_id: int) -> int:
    """How many of the member's notifications are unread, up to :data:`UNREAD_CAP`.

    A Core statement on the session's connection: the table is the plugin's
    own and holds no protected records, so the ORM's per-statement work (the
    query filter's listeners) would only add to the cost of every page. The
    index ``(membership_id, read_at)`` answers it alone, and the cap bounds
    the entries it reads.
    """
    table = rbac.models.Notification.__table__
    unread = (sa.select(table.c.id)
              .where(table.c.membership_id == membership_id, table.c.read_at.is_(None))
              .limit(UNREAD_CAP).subquery())
    return int(rbac.db.session.connection().execute(
        sa.select(sa.func.count()).select_from(unread)).scalar() or 0)


def list_for(rbac: RBACProtocol, membership_id: int, *, unread_only: bool = False,
             before_id: int | None = None, limit: int = PAGE_SIZE) -> list[Any]:
    """The member's notifications, newest first (``before_id`` pages on)."""
    N = rbac.models.Notification
    query = sa.select(N).where(N.membership_id == membership_id).order_by(N.id.desc())
    if unread_only:
        query = query.where(N.read_at.is_(None))
    if before_id is not None:
        query = query.where(N.id < before_id)
    return list(rbac.db.session.scalars(query.limit(max(1, min(limit, PAGE_SIZE)))))


def own(rbac: RBACProtocol, membership_id: int, notification_id: Any) -> Any:
    """The member's notification ``notification_id``, or None (not theirs, or none)."""
    N = rbac.models.Notification
    try:
        key = int(notification_id)
    except (TypeError, ValueError):
        return None
    return rbac.db.session.scalar(sa.select(N).where(N.id == key, N.membership_id == membership_id))


def mark_read(rbac: RBACProtocol, membership_id: int, notification_id: Any) -> Any:
    """Mark one of the member's notifications read (no change if read); None if not theirs."""
    row = own(rbac, membership_id, notification_id)
    if row is not None and row.read_at is None:
        row.read_at = utcnow()
    return row


def mark_all_read(rbac: RBACProtocol, membership_id: int) -> int:
    """Mark every unread notification of the member read; return how many."""
    N = rbac.models.Notification
    rows = list(rbac.db.session.scalars(
        sa.select(N).where(N.membership_id == membership_id, N.read_at.is_(None))))
    now = utcnow()
    for row in rows:
        row.read_at = now
    return len(rows)


def as_json(row: Any) -> dict[str, Any]:
    """A notification as the API shows it (the mail side's internals left out)."""
    return {"id": row.id, "category": row.category, "event": row.event,
            "summary": row.summary, "link": row.link,
            "created_at": row.created_at.isoformat() + "Z",
            "read": row.read_at is not None,
            "read_at": row.read_at.isoformat() + "Z" if row.read_at else None}


def safe_link(link: str | None) -> str | None:
    """``link`` if it is a path on this site, else None (never an open redirect)."""
    if not link or not link.startswith("/") or link.startswith("//") or "\\" in link:
        return None
    return link
