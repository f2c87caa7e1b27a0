"""Deciding approval requests: approve, reject, cancel, expire, and the one execution.

The rules, each refusing with nothing changed:

* only an active member holding the request's approver permission decides
  (403), and never on their own request (403: segregation of duties);
* a request no longer pending, or past its expiry, is a 409; so is a second
  vote by the same member;
* with two approvals required, the two come from distinct members who may
  both still decide when the second comes: an earlier approval of a member
  who has since lost the approver permission, or was deactivated, stays
  recorded but no longer counts.

The final approval executes the operation **exactly once**. The deciding
transaction first writes the request row (PostgreSQL's row lock, SQLite's
write lock), so two approvers deciding at once are taken one after the
other and the second reads the first's vote and status. The move to
``executing`` is moreover a conditional UPDATE
(``WHERE status = 'pending'``): a transaction that loses it executes
nothing. The operation then runs as the requester (their access built
afresh, through the same service, with the gate told it is approved) in a
SAVEPOINT: a refusal (their rights are gone, the role was deleted
meanwhile ...) rolls back what it began and is stored as the request's
``failure``, with status ``failed``. A settings change applies only the
fields it changes, and is refused when one of them moved since the request
(:mod:`.changes`): the routes answer that failure with a 409.

Rejection, cancellation and expiry only change the request's status. Every
step is audited (who, what, why) and signalled with ``approval_decided`` to
the requester and the approvers.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, has_request_context
from werkzeug.exceptions import HTTPException

from .. import gate, signals
from ..audit import events as audit_events
from ..config import setting
from ..context import change_reason
from ..errors import PermissionDenied, RBACError, RuleConflict, ValidationError
from ..identity import client_ip, request_state
from ..loader import load_access_by_id
from ..locking import write_lock
from ..models import utcnow
from ..policy import Access
from .executors import BUILT_IN, PRODUCERS_KEY, ExportFile
from .requests import REASON_MAX, approvers, link, may_decide

if TYPE_CHECKING:
    from ..interface import RBACProtocol

def _locked(rbac: RBACProtocol, req: Any) -> Any:
    """Reload ``req`` under a lock, with its decisions as committed now.

    The request row is written first (:func:`..locking.write_lock`): a
    concurrent decision waits there, then reads the votes this one
    committed, so two approvals at once cannot each count only their own.
    """
    R = rbac.models.ApprovalRequest
    session = rbac.db.session
    write_lock(session, R, R.id == req.id)
    row = session.scalar(sa.select(R).where(R.id == req.id)
                         .execution_options(populate_existing=True))
    session.refresh(row, ["decisions"])
    return row


def _reason(reason: Any) -> str:
    if reason is not None and not isinstance(reason, str):
        raise ValidationError("reason must be text", field="reason")
    return (reason or "").strip()[:REASON_MAX]


def _require_open(req: Any, now: dt.datetime) -> None:
    if req.status != "pending":
        raise RuleConflict(f"Request #{req.id} is already {req.status}.", field="status")
    if req.expires_at <= now:
        raise RuleConflict(f"Request #{req.id} expired at {req.expires_at:%Y-%m-%d %H:%M} UTC.",
                           field="status")


def _require_approver(rbac: RBACProtocol, access: Access | None, req: Any) -> Access:
    if access is None or not access.active or access.workspace_id != req.workspace_id:
        raise PermissionDenied("You are not an active member of this workspace.")
    if req.requester_id == access.membership_id:
        raise PermissionDenied("You cannot decide your own request (segregation of duties): "
                               "another approver must.", field="status")
    if not may_decide(rbac, access, req.approver_permission):
        raise PermissionDenied(f"Deciding approvals needs {req.approver_permission}.",
                               resource=req.approver_permission.rpartition(".")[0],
                               action=req.approver_permission.rpartition(".")[2])
    return access


def _announce(rbac: RBACProtocol, req: Any, outcome: str, actor: Access | None, reason: str,
              *, link_path: str | None = None, only_requester: bool = False) -> None:
    """Audit the step and send ``approval_decided`` to the requester and the approvers."""
    ids = (actor.user_id, actor.membership_id) if actor is not None else (None, None)
    audit_events.record(rbac, f"approval.{outcome}", workspace_id=req.workspace_id,
                        resource="approvals", target=f"request #{req.id}: {req.summary}",
                        actor_ids=ids, operation=req.operation, reason=reason,
                        failure=req.failure or None)
    recipients = [req.requester_id]
    if not only_requester:
        recipients += [a.membership_id for a in approvers(rbac, req.workspace_id,
                                                          req.approver_permission)
                       if a.membership_id != req.requester_id]
    signals.approval_decided.send(
        current_app._get_current_object(), request=req, outcome=outcome,  # type: ignore[attr-defined]
        actor=actor, reason=reason, workspace_id=req.workspace_id, recipients=recipients,
        summary=f"Request #{req.id} ({req.summary}) {outcome}.", link=link_path or link(req.id))


def approve(rbac: RBACProtocol, access: Access | None, req: Any, reason: Any = "") -> str:
    """Approve ``req``; the last approval executes it. Returns the outcome (the caller commits)."""
    text = _reason(reason)
    _require_approver(rbac, access, req)
    req = _locked(rbac, req)
    now = utcnow()
    _require_open(req, now)
    if any(d.membership_id == access.membership_id for d in req.decisions):  # type: ignore[union-attr]
        raise RuleConflict("You already approved this request: another approver must.",
                           field="status")
    rbac.db.session.add(rbac.models.ApprovalDecision(
        request=req, membership_id=access.membership_id, decision="approve", reason=text, at=now,  # type: ignore[union-attr]
        address=client_ip()))
    rbac.db.session.flush()
    if len(_counted_votes(rbac, req, access)) < req.approvals_required:  # type: ignore[arg-type]
        _announce(rbac, req, "approved", access, text)
        return "approved"
    return execute(rbac, req, access, text)


def _counted_votes(rbac: RBACProtocol, req: Any, access: Access) -> set[int]:
    """The members whose approvals count: those who may still decide.

    A vote is an approver's judgement while they are one: a member who has
    since lost the approver permission, or was deactivated, no longer makes
    the quorum, so their earlier approval is not counted (it stays recorded).
    Each earlier vote is judged from its own moment and address (their roles
    as they are now, their weekday, hour and network conditions as they held
    when and where that vote was cast), never from this request's: an approver
    whose role holds on the office network still counts when the second vote
    comes from elsewhere.
    """
    counted = {access.membership_id}
    for d in req.decisions:
        if d.decision == "approve" and d.membership_id not in counted and may_decide(
                rbac, _voter_access(rbac, d), req.approver_permission):
            counted.add(d.membership_id)
    return counted


def _voter_access(rbac: RBACProtocol, vote: Any) -> Access | None:
    """The voter's access at the instant and from the address of ``vote`` (never cached)."""
    return load_access_by_id(rbac.db.session, rbac.models, rbac.registry, current_app.config,
                             vote.membership_id, vote.at, address=vote.address)


def _take(rbac: RBACProtocol, req: Any, new_status: str) -> None:
    """Move ``req`` from pending to ``new_status`` by a conditional UPDATE, or refuse (409)."""
    R = rbac.models.ApprovalRequest
    result = rbac.db.session.execute(
        sa.update(R).where(R.id == req.id, R.status == "pending")
        .values(status=new_status, decided_at=utcnow())
        .execution_options(synchronize_session=False))
    if result.rowcount != 1:
        raise RuleConflict(f"Request #{req.id} was decided meanwhile.", field="status")
    rbac.db.session.refresh(req)


def execute(rbac: RBACProtocol, req: Any, approver: Access | None, reason: str) -> str:
    """Run the approved operation once, as the requester; store its failure if refused."""
    _take(rbac, req, "executing")
    session = rbac.db.session
    try:
        # The change's audit event carries the requester's reason (a workspace
        # that requires one refuses a change without), else the approver's.
        with change_reason(req.reason or reason), session.begin_nested():
            produced = _run(rbac, req)
    except (RBACError, HTTPException, sa.exc.IntegrityError, KeyError, TypeError,
            ValueError) as exc:
        req.status = "failed"
        req.failure = _failure_text(exc)
        session.flush()
        _announce(rbac, req, "failed", approver, reason)
        return "failed"
    req.status = "executed"
    token = _store(req, produced) if produced is not None else None
    session.flush()
    _announce(rbac, req, "executed", approver, reason)
    if token is not None:
        _announce_download(rbac, req, token)
    return "executed"


def _failure_text(exc: BaseException) -> str:
    text = getattr(exc, "message", None) or getattr(exc, "description", None) or str(exc)
    return f"Not executed: {text}"[:2000]


def _run(rbac: RBACProtocol, req: Any) -> ExportFile | None:
    requester = rbac.access_for(req.requester_id)
    if requester is None or not requester.active or requester.workspace_id != req.workspace_id:
        raise PermissionDenied("the requester is no longer an active member of this workspace")
    if req.operation == "export":
        return _export(rbac, req, requester)
    executor = BUILT_IN.get(req.operation)
    if executor is None:
        raise ValidationError(f"unknown operation {req.operation!r}", field="operation")
    with rbac.as_member(requester), gate.approved(req.operation, req.id):
        return executor(rbac, requester, req.payload)


def _export(rbac: RBACProtocol, req: Any, requester: Access) -> ExportFile:
    """Produce an approved export as the requester, who must still hold ``export`` on it.

    The host's export route checks the permission in its view; the replay
    bypasses that view, so the permission is asked here again.
    """
    resource = str(req.payload.get("resource", ""))
    decision = rbac.decide(requester, "export", resource) if resource in rbac.registry else None
    if not decision:
        raise PermissionDenied(f"the requester may no longer export {resource}"
                               + (f": {decision.reason}" if decision is not None else ""))
    producers = current_app.extensions.get(PRODUCERS_KEY, {})
    producer = producers.get(req.payload.get("via", "app"))
    if producer is None:
        raise ValidationError("this app cannot replay that export; export from the list "
                              "page instead", field="operation")
    with rbac.as_member(requester), gate.approved(req.operation, req.id):
        produced = producer(req.payload)
    if len(produced.content) > setting("RBAC_APPROVAL_MAX_EXPORT_BYTES"):
        raise ValidationError("the export is larger than RBAC_APPROVAL_MAX_EXPORT_BYTES",
                              field="operation")
    return produced  # type: ignore[no-any-return]


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _store(req: Any, produced: ExportFile) -> str:
    """Keep the file for its single-use download; return the link's token (never stored)."""
    token = secrets.token_urlsafe(32)
    req.filename, req.content = produced.filename, produced.content
    req.download_hash = token_hash(token)
    req.download_expires_at = utcnow() + dt.timedelta(hours=setting("RBAC_APPROVAL_DOWNLOAD_HOURS"))
    return token


def download_link(token: str) -> str:
    prefix = (setting("RBAC_SETTINGS_URL_PREFIX") or "/settings").rstrip("/")
    return f"{prefix}/approvals/download/{token}"


def _announce_download(rbac: RBACProtocol, req: Any, token: str) -> None:
    """Tell the requester alone the download link (it is theirs: nobody else gets the token)."""
    signals.approval_decided.send(
        current_app._get_current_object(), request=req, outcome="download_ready",  # type: ignore[attr-defined]
        actor=None, reason="", workspace_id=req.workspace_id,
        recipients=[req.requester_id],
        summary=f"Your export of request #{req.id} is ready: the link works once, for "
                f"{setting('RBAC_APPROVAL_DOWNLOAD_HOURS')} hours.",
        link=download_link(token))


def reject(rbac: RBACProtocol, access: Access | None, req: Any, reason: Any = "") -> str:
    """Reject ``req``: it ends, nothing is executed (the caller commits)."""
    text = _reason(reason)
    _require_approver(rbac, access, req)
    req = _locked(rbac, req)
    _require_open(req, utcnow())
    rbac.db.session.add(rbac.models.ApprovalDecision(
        request=req, membership_id=access.membership_id, decision="reject", reason=text))  # type: ignore[union-attr]
    _take(rbac, req, "rejected")
    _announce(rbac, req, "rejected", access, text)
    return "rejected"


def cancel(rbac: RBACProtocol, access: Access | None, req: Any, reason: Any = "") -> str:
    """Withdraw one's own pending request (the requester only; 403 for anyone else)."""
    text = _reason(reason)
    if access is None or req.requester_id != access.membership_id:
        raise PermissionDenied("Only the requester can cancel a request.")
    req = _locked(rbac, req)
    if req.status != "pending":
        raise RuleConflict(f"Request #{req.id} is already {req.status}.", field="status")
    _take(rbac, req, "cancelled")
    _announce(rbac, req, "cancelled", access, text)
    return "cancelled"


def expire_due(rbac: RBACProtocol, workspace_id: int | None = None) -> int:
    """Mark pending requests past their expiry ``expired`` (the clock decides; the caller commits)."""
    R = rbac.models.ApprovalRequest
    stmt = sa.select(R).where(R.status == "pending", R.expires_at <= utcnow())
    if workspace_id is not None:
        stmt = stmt.where(R.workspace_id == workspace_id)
    count = 0
    for req in rbac.db.session.scalars(stmt).all():
        try:
            _take(rbac, req, "expired")
        except RuleConflict:
            continue
        _announce(rbac, req, "expired", None, "")
        count += 1
    return count


def download(rbac: RBACProtocol, access: Access | None, token: Any) -> Any:
    """The request whose file the link's token opens, now used; None for a forged, used or old link.

    The link is the requester's alone: another member holding it gets None too.
    """
    R = rbac.models.ApprovalRequest
    if access is None or not isinstance(token, str) or not 20 <= len(token) <= 100:
        return None
    req = rbac.db.session.scalar(sa.select(R).where(R.download_hash == token_hash(token)))
    return claim(rbac, access, req)


def claim(rbac: RBACProtocol, access: Access | None, req: Any) -> Any:
    """Mark ``req``'s file downloaded by its requester and return ``req``, or None.

    None when ``access`` is not the requester, there is no file, it was
    downloaded already, its link expired or the requester no longer holds
    ``export`` on it (a role taken away after the approval stops the download
    as it stops the export page). Marking it used is a conditional UPDATE, so
    two clicks at once still download once.
    """
    R = rbac.models.ApprovalRequest
    if has_request_context() and request_state().real_access is not None:
        return None  # viewing as the requester: the file is theirs to take, not the viewer's
    if (req is None or access is None or req.download_hash is None
            or req.requester_id != access.membership_id
            or req.workspace_id != access.workspace_id):
        return None
    resource = str((req.payload or {}).get("resource", ""))
    if resource not in rbac.registry or not rbac.decide(access, "export", resource):
        return None
    now = utcnow()
    result = rbac.db.session.execute(
        sa.update(R).where(R.id == req.id, R.download_used_at.is_(None),
                           R.download_expires_at > now)
        .values(download_used_at=now).execution_options(synchronize_session=False))
    if result.rowcount != 1:
        return None
    audit_events.record(rbac, "approval.downloaded", workspace_id=req.workspace_id,
                        resource="approvals", target=f"request #{req.id}: {req.filename}",
                        actor_ids=(access.user_id, access.membership_id))
    return req
