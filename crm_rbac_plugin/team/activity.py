"""Last activity: write ``Membership.last_seen_at`` at the start of a request.

:func:`init_app` registers the ``before_request`` hook. A member's activity
is written at most once per ``RBAC_LAST_SEEN_INTERVAL`` per process, by a
conditional Core UPDATE (no flush, so no policy-version bump: cached access
stays valid) committed while the session holds nothing else.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, request
from flask_login import current_user

from ..models import utcnow

if TYPE_CHECKING:
    from ..extension import RBAC

__all__ = ["init_app"]


def init_app(app: Flask) -> None:
    """Record each member's last activity."""
    app.extensions["rbac_team"] = {"seen": {}}
    app.before_request(_touch_last_seen)


def _rbac() -> RBAC:
    return current_app.extensions["rbac"].rbac  # type: ignore[no-any-return]


def _touch_last_seen() -> None:
    """Write ``Membership.last_seen_at`` at most once per interval per member and process.

    A conditional Core UPDATE (no flush, so no policy-version bump: cached
    access stays valid) committed at the start of the request, when the
    session holds nothing else.
    """
    if request.endpoint == "static":
        return
    user = current_user._get_current_object()  # type: ignore[attr-defined]
    if not user or not user.is_authenticated:
        return
    rbac = _rbac()
    ws = rbac.current_workspace_id()
    if ws is None:
        return
    key = (rbac.user_pk(user), str(ws))
    seen: dict[tuple[Any, str], dt.datetime] = current_app.extensions["rbac_team"]["seen"]
    now = utcnow()
    interval = dt.timedelta(seconds=current_app.config["RBAC_LAST_SEEN_INTERVAL"])
    last = seen.get(key)
    if last is not None and now - last < interval:
        return
    seen[key] = now
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
