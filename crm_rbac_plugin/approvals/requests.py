"""Recording approval requests, and who may see and decide them.

:func:`record` is the gate function (:func:`.gate.install`): when the
workspace's policy names the operation, it adds a pending request with the
payload to replay, audits it, signals ``approval_requested`` to the eligible
approvers, commits, and raises :class:`.gate.ApprovalPending`. The commit
happens here, not in the view, because the request must be kept whatever
the caller (page, API, CLI, Flask-Admin) does with the exception; at that
point the service has checked but written nothing, so the commit holds the
request, its audit event and the notification rows only.

A request is visible to its requester and to the workspace's eligible
approvers (members holding the request's approver permission); anyone else
is told it does not exist (404), as a record of another workspace is.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, NoReturn

import sqlalchemy as sa
from flask import current_app

from .. import gate, signals
from ..audit import events as audit_events
from ..config import setting
from ..errors import RuleConflict
from ..models import utcnow
from ..policy import Access
from . import volume
from .changes import narrow
from .executors import replays_export
from .policy import settings_for

if TYPE_CHECKING:
    from ..interface import RBACProtocol

REASON_MAX = 2000
OPEN = ("pending", "executing")


def link(request_id: int) -> str:
    """The path of a request's page, where one approves, rejects or cancels it."""
    prefix = (setting("RBAC_SETTINGS_URL_PREFIX") or "/settings").rstrip("/")
    return f"{prefix}/approvals/{request_id}"


def may_decide(rbac: RBACProtocol, access: Access | None, permission: str) -> bool:
    """Whether ``access`` holds the approver ``permission`` (active members only)."""
    if access is None or not access.active:
        return False
    resource, _, action = permission.rpartition(".")
    return bool(rbac.decide(access, action, resource))


def approvers(rbac: RBACProtocol, workspace_id: int, permission: str) -> list[Access]:
    """The active members of the workspace holding ``permission``."""
    M = rbac.models.Membership
    ids = rbac.db.session.scalars(sa.select(M.id).where(
        M.workspace_id == workspace_id, M.status == "active").order_by(M.id)).all()
    found = []
    for mid in ids:
        access = rbac.access_for(mid)
        if may_decide(rbac, access, permission):
            found.append(access)
    return found


def needs(rbac: RBACProtocol, actor: Access, operation: str, count: int | None) -> bool:
    """Whether the actor's workspace policy makes ``operation`` wait (the gate asks first).

    A counted operation is judged with the rows the member ran without
    approval in the last day (:mod:`.volume`), and one let through adds its
    rows to them.
    """
    policy = settings_for(rbac, actor.workspace_id)
    if operation not in gate.COUNTED or policy.threshold(operation) is None:
        return policy.needs(operation, count)
    rows = count or 0
    if policy.needs(operation, rows + volume.used(rbac, actor, operation)):
        return True
    volume.add(rbac, actor, operation, rows)
    return False


def refuse_unreplayable(operation: str, payload: dict[str, Any], summary: str) -> None:
    """Refuse (409) an export whose path the app cannot produce once approved."""
    if operation == "export" and not replays_export(payload.get("via", "app")):
        raise RuleConflict(
            f"{summary or 'This export'} needs approval, and this page's export cannot be "
            "produced once approved: export from the record's list page instead.",
            field="export")


def record(rbac: RBACProtocol, actor: Access, operation: str, payload: dict[str, Any],
           count: int | None, summary: str, reason: str) -> NoReturn:
    """Record a pending request, commit it and raise ApprovalPending.

    Whatever the request's transaction did before the gate is rolled back
    first: the operation changes nothing until approved, even where its
    service had begun (a role given inside a larger change). An export whose
    path the app cannot replay once approved (no producer for its ``via``,
    :func:`.setup.export_producer`) is refused instead (409): a request that
    can only fail would take an approver's decision and deliver nothing.
    """
    refuse_unreplayable(operation, payload, summary)
    policy = settings_for(rbac, actor.workspace_id)
    # The gate passes context.current_reason(): the caller's change_reason, else the
    # request's form, query or JSON ``reason``.
    reason = reason.strip()[:REASON_MAX]
    # What the requester saw is read before the rollback, in the service's transaction.
    payload = narrow(rbac, actor, operation, payload)
    rbac.db.session.rollback()
    same = identical_pending(rbac, actor, operation, audit_events.jsonable(payload))
    if same is not None:
        raise gate.ApprovalPending(same)
    earlier = volume.used(rbac, actor, operation) if operation in gate.COUNTED else 0
    if earlier:
        summary = f"{summary} ({earlier} more in the last {volume.WINDOW_HOURS} hours)"
    now = utcnow()
    req = rbac.models.ApprovalRequest(
        workspace_id=actor.workspace_id, requester_id=actor.membership_id,
        operation=operation, payload=audit_events.jsonable(payload), summary=summary[:300],
        reason=reason, status="pending",
        approvals_required=policy.approvals_required,
        approver_permission=policy.approver_permission, created_at=now,
        expires_at=now + dt.timedelta(hours=policy.expiry_hours))
    session = rbac.db.session
    session.add(req)
    session.flush()
    audit_events.record(rbac, "approval.requested", workspace_id=actor.workspace_id,
                        resource="approvals", target=f"request #{req.id}: {req.summary}",
                        actor_ids=(actor.user_id, actor.membership_id), operation=operation,
                        rows=count, reason=req.reason)
    recipients = [a.membership_id for a in approvers(rbac, actor.workspace_id,
                                                     policy.approver_permission)
                  if a.membership_id != actor.membership_id]
    signals.approval_requested.send(
        current_app._get_current_object(), request=req,  # type: ignore[attr-defined]
        workspace_id=actor.workspace_id, recipients=recipients,
        summary=f"Approval requested: {req.summary}", link=link(req.id))
    session.commit()
    raise gate.ApprovalPending(req)


def identical_pending(rbac: RBACProtocol, actor: Access, operation: str,
                      payload: Any) -> Any:
    """The actor's own pending, unexpired request for the same operation and payload, or None.

    Filing the same request again returns it rather than a new one: one
    member asking repeatedly neither floods the approvers' queue nor notifies
    them twice, and the first request keeps its place and its reason.
    """
    R = rbac.models.ApprovalRequest
    rows = rbac.db.session.scalars(sa.select(R).where(
        R.workspace_id == actor.workspace_id, R.requester_id == actor.membership_id,
        R.operation == operation, R.status == "pending", R.expires_at > utcnow())
        .order_by(R.id)).all()
    return next((r for r in rows if r.payload == payload), None)


def request_in(rbac: RBACProtocol, workspace_id: int, request_id: Any) -> Any:
    """The request ``request_id`` of the workspace, or None."""
    R = rbac.models.ApprovalRequest
    if isinstance(request_id, bool) or not isinstance(request_id, int):
        return None
    return rbac.db.session.scalar(sa.select(R).where(R.id == request_id,
                                                     R.workspace_id == workspace_id))


def may_see(rbac: RBACProtocol, access: Access | None, req: Any) -> bool:
    """The requester and the eligible approvers see a request; no one else."""
    if access is None or not access.active or req.workspace_id != access.workspace_id:
        return False
    return (req.requester_id == access.membership_id
            or may_decide(rbac, access, req.approver_permission))


def visible(rbac: RBACProtocol, access: Access, request_id: Any) -> Any:
    """The request if ``access`` may see it, else None (the caller answers 404)."""
    req = request_in(rbac, access.workspace_id, request_id)
    return req if req is not None and may_see(rbac, access, req) else None


#: The most decided requests the lists show (newest first); open ones are never cut.
HISTORY_SHOWN = 500


def listing(rbac: RBACProtocol, access: Access) -> dict[str, list[Any]]:
    """The member's three lists: ``to_decide`` (pending, not theirs, not yet voted),
    ``mine`` (their own requests) and ``history`` (others' decided ones they may see).

    Every open request is read, however many newer ones there are: a request
    stays in its approvers' queue and its requester's list until decided or
    expired, so nobody buries one by filing more. Only the decided ones are
    cut, to the newest :data:`HISTORY_SHOWN`.
    """
    R = rbac.models.ApprovalRequest
    in_ws = sa.select(R).where(R.workspace_id == access.workspace_id)
    session = rbac.db.session
    rows = [*session.scalars(in_ws.where(R.status.in_(OPEN)).order_by(R.id.desc())),
            *session.scalars(in_ws.where(R.status.not_in(OPEN)).order_by(R.id.desc())
                             .limit(HISTORY_SHOWN))]
    out: dict[str, list[Any]] = {"to_decide": [], "mine": [], "history": []}
    for req in rows:
        if req.requester_id == access.membership_id:
            out["mine"].append(req)
        elif not may_decide(rbac, access, req.approver_permission):
            continue
        elif req.status == "pending" and not any(
                d.membership_id == access.membership_id for d in req.decisions):
            out["to_decide"].append(req)
        else:
            out["history"].append(req)
    return out


def to_json(req: Any, access: Access | None = None) -> dict[str, Any]:
    """A request as the API shows it (never the payload's file nor the link's hash)."""
    def iso(value: dt.datetime | None) -> str | None:
        return value.isoformat() + "Z" if value is not None else None

    return {"id": req.id, "operation": req.operation, "summary": req.summary,
            "reason": req.reason, "status": req.status, "payload": req.payload,
            "requester_id": req.requester_id,
            "approvals_required": req.approvals_required,
            "approvals": [{"membership_id": d.membership_id, "decision": d.decision,
                           "reason": d.reason, "at": iso(d.at)} for d in req.decisions],
            "created_at": iso(req.created_at), "expires_at": iso(req.expires_at),
            "decided_at": iso(req.decided_at), "failure": req.failure,
            "download_ready": bool(req.download_hash and req.download_used_at is None
                                   and access is not None
                                   and access.membership_id == req.requester_id)}
