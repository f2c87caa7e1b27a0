"""A member who leaves Active (deactivated) has their pending approval requests cancelled.

A request is its requester's to pursue: once they are no longer an active
member it would only fail when approved, and meanwhile it sits in the
approvers' lists. The flush that takes a membership out of Active (a page,
the API, the CLI, a bulk change, Flask-Admin, host code) cancels each of
their pending requests in the same transaction: a conditional UPDATE
(``WHERE status = 'pending'``, so a request being decided at that moment is
left to its decision), an ``approval.cancelled`` audit event by whoever acts,
with the reason, and ``approval_decided`` to the approvers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from sqlalchemy.orm.attributes import set_committed_value

from .. import signals
from ..audit import events as audit_events
from ..models import utcnow
from ..tokens import left_active
from .requests import approvers, link

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The reason stored on the cancellation's audit event.
REASON = "the requester is no longer an active member"


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Cancel a membership's pending requests in the flush that takes it out of Active."""
    event.listen(db_session, "before_flush",
                 lambda session, context, instances: _on_flush(rbac, session))


def _on_flush(rbac: RBACProtocol, session: Session) -> None:
    Membership = rbac.models.Membership
    for obj in list(session.dirty):
        if isinstance(obj, Membership) and left_active(obj):
            with session.no_autoflush:
                cancel_pending_of(rbac, session, obj.id)


def cancel_pending_of(rbac: RBACProtocol, session: Session, membership_id: int) -> int:
    """Cancel the member's pending requests (audited, signalled); return how many."""
    R = rbac.models.ApprovalRequest
    pending = session.scalars(sa.select(R).where(R.requester_id == membership_id,
                                                 R.status == "pending")).all()
    cancelled = 0
    for req in pending:
        now = utcnow()
        result = session.connection().execute(
            sa.update(R.__table__).where(R.__table__.c.id == req.id,
                                         R.__table__.c.status == "pending")
            .values(status="cancelled", decided_at=now))
        if result.rowcount != 1:
            continue
        set_committed_value(req, "status", "cancelled")
        set_committed_value(req, "decided_at", now)
        audit_events.record(rbac, "approval.cancelled", workspace_id=req.workspace_id,
                            resource="approvals", target=f"request #{req.id}: {req.summary}",
                            operation=req.operation, reason=REASON)
        recipients = [a.membership_id for a in approvers(rbac, req.workspace_id,
                                                         req.approver_permission)
                      if a.membership_id != membership_id]
        signals.approval_decided.send(
            current_app._get_current_object(), request=req, outcome="cancelled",  # type: ignore[attr-defined]
            actor=None, reason=REASON, workspace_id=req.workspace_id, recipients=recipients,
            summary=f"Request #{req.id} ({req.summary}) cancelled: {REASON}.",
            link=link(req.id))
        cancelled += 1
    return cancelled
