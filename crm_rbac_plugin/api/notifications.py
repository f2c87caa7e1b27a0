"""API endpoints for the caller's own notifications and notification channels.

* ``GET /notifications`` (``?unread=1``, ``?before=<id>`` to page on):
  the caller's notifications, newest first, and their unread count;
* ``POST /notifications/<id>/read`` and ``POST /notifications/read-all``;
* ``GET`` / ``PATCH /notification-preferences``: the channel per category
  (``{"roles": "digest", "security": "mail"}``); an unknown category or
  channel, or ``off`` for an Owner's security alerts, is a 400 naming it.

Every endpoint acts on the caller's own membership only (from their
access, never from the request): another member's notification id is a
404, exactly like an id that does not exist.
"""

from __future__ import annotations

from flask import jsonify, request
from flask.typing import ResponseReturnValue

from .. import inputs
from ..notify import inbox, preferences
from ..policy import Access
from ..proxies import current_rbac
from .blueprint import active_access, bad, bp, check_keys, forbidden, json_body, not_found


def own_access() -> Access:
    """The caller's own access (an Owner viewing as another member: the Owner's)."""
    active_access()
    access = inbox.own_access(current_rbac)
    if access is None:
        raise forbidden("You are not an active member of this workspace.")
    return access


@bp.get("/notifications")
def list_notifications() -> ResponseReturnValue:
    """The caller's notifications, newest first (50 at most per call)."""
    access = own_access()
    before = request.args.get("before")
    if before is not None and not (inputs.is_digits(before)
                                   and int(before) <= inputs.MAX_ID):
        raise bad("before must be a notification id", "before")
    rows = inbox.list_for(current_rbac, access.membership_id,
                          unread_only=request.args.get("unread") in ("1", "true"),
                          before_id=int(before) if before else None)
    return jsonify({"notifications": [inbox.as_json(r) for r in rows],
                    "unread": inbox.unread_count(current_rbac, access.membership_id)})


@bp.post("/notifications/<int:notification_id>/read")
def read_notification(notification_id: int) -> ResponseReturnValue:
    """Mark one of the caller's notifications read."""
    access = own_access()
    row = inbox.mark_read(current_rbac, access.membership_id, notification_id)
    if row is None:
        raise not_found("notification")
    current_rbac.db.session.commit()
    return jsonify(inbox.as_json(row))


@bp.post("/notifications/read-all")
def read_all_notifications() -> ResponseReturnValue:
    """Mark every unread notification of the caller read."""
    access = own_access()
    count = inbox.mark_all_read(current_rbac, access.membership_id)
    current_rbac.db.session.commit()
    return jsonify({"marked": count, "unread": 0})


def _membership() -> object:
    access = own_access()
    return current_rbac.db.session.get(current_rbac.models.Membership, access.membership_id)


@bp.get("/notification-preferences")
def notification_preferences() -> ResponseReturnValue:
    """The caller's channel per category, and which categories they may not switch off."""
    prefs = preferences.preferences_of(current_rbac, _membership())
    return jsonify({"preferences": {k: p["channel"] for k, p in prefs.items()},
                    "locked": sorted(k for k, p in prefs.items() if p["locked"]),
                    "channels": list(preferences.CHANNELS)})


@bp.patch("/notification-preferences")
def update_notification_preferences() -> ResponseReturnValue:
    """Change the caller's channels for the categories sent."""
    body = json_body()
    check_keys(body, frozenset(preferences.CATEGORIES))
    membership = _membership()
    changed = preferences.save(current_rbac, membership, body)
    current_rbac.db.session.commit()
    prefs = preferences.preferences_of(current_rbac, membership)
    return jsonify({"preferences": {k: p["channel"] for k, p in prefs.items()},
                    "locked": sorted(k for k, p in prefs.items() if p["locked"]),
                    "changed": changed})
