"""Refused attempts: noted during a request, written after it in their own transaction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import has_request_context, request

from ..identity import request_state, signed_in_user
from ..models import utcnow
from ..policy import Access
from .events import client_ip, jsonable

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def note_denied(rbac: RBACProtocol, access: Access | None, action: str, resource: str, record: Any,
                reason: str) -> None:
    """Remember a refusal of this request; :func:`write_denied` stores it after the request."""
    if not has_request_context():
        return
    state = request_state()
    who = state.real_access or access
    user = signed_in_user()
    user_id = rbac.user_pk(user) if user is not None else None
    ident = getattr(record, "id", None) if record is not None else None
    row = {
        "workspace_id": who.workspace_id if who is not None else None,
        "at": utcnow(),
        "actor_user_id": user_id,
        "actor_membership_id": who.membership_id if who is not None else None,
        "action": "access.denied", "resource": resource,
        "target": f"{resource} #{ident}" if ident is not None else resource,
        "before": None, "after": None,
        "detail": {"action": action, "record_id": jsonable(ident), "reason": reason,
                   "path": request.path, "method": request.method},
        "ip": client_ip(),
    }
    key = (action, resource, ident, reason)
    if key not in state.denied_keys:  # the decorator and the guard may report the same refusal
        state.denied_keys.add(key)
        state.denied.append(row)


#: ``session.info`` key of the session that stores refusals: what it writes (the
#: events, and the alert rules' counters and alerts about them) is the trail's,
#: never the member's data, so view-as's read-only rule lets it through.
REFUSALS_SESSION = "rbac_refusals_session"


def write_denied(rbac: RBACProtocol) -> None:
    """Store the refusals noted during this request, in a transaction of their own.

    The rows go through a new session of the app's session class, not the
    request's (whose state is the refused request's), so the session listeners
    that watch every audit event written (the alert rules) see them too.
    """
    state = request_state()
    rows, state.denied = state.denied, []
    if not rows:
        return
    session = rbac.db.session.session_factory()
    session.info[REFUSALS_SESSION] = True
    try:
        session.add_all([rbac.models.AuditEvent(**row) for row in rows])
        session.commit()
    finally:
        session.close()
