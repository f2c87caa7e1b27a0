"""Last activity: write ``Membership.last_seen_at`` at the start of a request.

:func:`touch_last_seen` runs in the extension's ``before_request`` pass, first
of its checks, so a request the allowlist or the MFA gate refuses still
counts as activity. The write is a Core
UPDATE conditioned on ``last_seen_at < now - RBAC_LAST_SEEN_INTERVAL``, so a
member's row changes at most once per interval whatever the number of
processes; it does not flush (no policy-version bump: cached access stays
valid) and commits while the session holds nothing else.

Each process skips the UPDATE for the (user, workspace) pairs it wrote within
the interval. It remembers them in a :class:`RecentlySeen`, bounded in size
(``RBAC_LAST_SEEN_TRACKED``) and in age, so a long-running worker serving many
members keeps bounded memory. A member already remembered within the interval,
the common case, costs one dictionary read and no lock.
"""

from __future__ import annotations

import datetime as dt
import threading
from collections import OrderedDict
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask

from ..models import utcnow

if TYPE_CHECKING:
    from ..identity import Visit
    from ..interface import RBACProtocol

__all__ = ["RecentlySeen", "init_app", "touch_last_seen"]

#: ``app.extensions`` key of the app's :class:`RecentlySeen`.
EXTENSION_KEY = "rbac_last_seen"


class RecentlySeen:
    """Remember when each (user, workspace) pair's activity was last written, within bounds.

    Entries are kept in write order, oldest first. An entry older than the
    interval is dropped (the pair's next request writes anyway), and past
    ``limit`` entries the oldest go. Forgetting a pair costs one conditional
    UPDATE that changes no row (its ``last_seen_at < now - interval`` test
    fails), so the bound never changes a stored value. Safe across threads.
    """

    def __init__(self) -> None:
        self._written: OrderedDict[tuple[Any, str], dt.datetime] = OrderedDict()
        self._lock = threading.Lock()

    def __len__(self) -> int:
        return len(self._written)

    def due(self, key: tuple[Any, str], now: dt.datetime, interval: dt.timedelta,
            limit: int) -> bool:
        """Return whether ``key``'s activity needs writing at ``now``; if so, remember it.

        A pair written within the interval is answered without the lock: one
        dictionary read is atomic, and a stale answer only lets the locked
        path below decide.
        """
        last = self._written.get(key)
        if last is not None and now - last < interval:
            return False
        with self._lock:
            last = self._written.get(key)
            if last is not None and now - last < interval:
                return False
            self._written.pop(key, None)
            self._written[key] = now
            self._prune(now - interval, limit)
            return True

    def _prune(self, cutoff: dt.datetime, limit: int) -> None:
        written = self._written
        while written:
            last = next(iter(written.values()))
            if last > cutoff and len(written) <= limit:
                return
            written.popitem(last=False)


def init_app(app: Flask) -> None:
    """Give ``app`` its bounded memory of recent writes (the extension's pass calls
    :func:`touch_last_seen`)."""
    app.extensions[EXTENSION_KEY] = RecentlySeen()


def touch_last_seen(rbac: RBACProtocol, app: Flask, facts: Visit) -> None:
    """Write ``Membership.last_seen_at`` at most once per interval per member and process."""
    ws = facts.workspace_id
    if ws is None:
        return
    key = (facts.user_id, str(ws))
    now = utcnow()
    interval = facts.settings.last_seen_interval
    seen: RecentlySeen = app.extensions[EXTENSION_KEY]
    if not seen.due(key, now, interval, facts.settings.last_seen_tracked):
        return
    M = rbac.models.Membership.__table__
    try:
        rbac.db.session.execute(
            sa.update(M).where(M.c.user_id == key[0], M.c.workspace_id == int(key[1]),
                               M.c.status == "active",
                               sa.or_(M.c.last_seen_at.is_(None),
                                      M.c.last_seen_at < now - interval))
            .values(last_seen_at=now))
        rbac.db.session.commit()
    except (ValueError, sa.exc.SQLAlchemyError):  # a stale session value: not worth a 500
        rbac.db.session.rollback()
