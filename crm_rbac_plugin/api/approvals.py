"""The approval endpoints: list, show, approve, reject, cancel; the policy, get and patch.

The same functions as the Approvals pages (:mod:`..approvals`), so the same
rules: a request the member may not see is a 404; deciding without the
approver permission or on one's own request a 403; a decided or expired
request a 409. Each decision takes an optional ``{"reason": "..."}``.
An operation that waits for approval answers ``202 {"status":
"pending_approval", "request_id": N}`` wherever it is asked (see
:mod:`..approvals.setup`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from flask import jsonify
from flask.typing import ResponseReturnValue

from .. import approvals
from ..proxies import current_rbac
from .blueprint import active_access, body_bytes, bp, check_keys, json_body, not_found

REASON_ONLY = frozenset({"reason"})


def _body() -> dict[str, Any]:
    """The optional JSON body of a decision: ``{"reason": "..."}`` or nothing."""
    if not body_bytes():
        return {}
    body = json_body()
    check_keys(body, REASON_ONLY)
    return body


@bp.get("/approvals")
def list_approvals() -> ResponseReturnValue:
    """``{"to_decide": [...], "mine": [...], "history": [...]}`` for the caller."""
    rbac, access = current_rbac, active_access()
    if approvals.expire_due(rbac, access.workspace_id):
        rbac.db.session.commit()
    lists = approvals.listing(rbac, access)
    return jsonify({key: [approvals.to_json(r, access) for r in rows]
                    for key, rows in lists.items()})


def _visible(request_id: int) -> Any:
    req = approvals.visible(current_rbac, active_access(), request_id)
    if req is None:
        raise not_found("approval request")
    return req


@bp.get("/approvals/<int:request_id>")
def get_approval(request_id: int) -> ResponseReturnValue:
    return jsonify(approvals.to_json(_visible(request_id), active_access()))


def _decide(request_id: int, decide: Callable[..., str]) -> ResponseReturnValue:
    """Decide a request the caller may see: one they may not (or another workspace's)
    is the same 404 as a missing id; on a visible one the service answers 403 to a
    member who may not decide it."""
    rbac, access = current_rbac, active_access()
    req = _visible(request_id)
    body = _body()
    outcome = decide(rbac, access, req, body.get("reason", ""))
    rbac.db.session.commit()
    answer = {**approvals.to_json(req, access), "outcome": outcome}
    if outcome == "failed" and approvals.is_stale(req.failure):
        # What the request changes moved since it was made: it is failed and kept, and
        # nothing was applied; a conflict, with the error shape of every other 409.
        return jsonify({**answer, "error": "conflict", "message": req.failure,
                        "field": "fields"}), 409
    return jsonify(answer)


@bp.post("/approvals/<int:request_id>/approve")
def approve_approval(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, approvals.approve)


@bp.post("/approvals/<int:request_id>/reject")
def reject_approval(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, approvals.reject)


@bp.post("/approvals/<int:request_id>/cancel")
def cancel_approval(request_id: int) -> ResponseReturnValue:
    return _decide(request_id, approvals.cancel)


@bp.get("/approvals/policy")
def get_approval_policy() -> ResponseReturnValue:
    """The workspace's approval policy (every active member may read what needs approval)."""
    return jsonify(approvals.settings_for(current_rbac, active_access().workspace_id).to_json())


@bp.patch("/approvals/policy")
def update_approval_policy() -> ResponseReturnValue:
    """Change the keys sent (Owners only; the change may itself wait for approval)."""
    rbac, access = current_rbac, active_access()
    body = json_body()
    saved = approvals.save(rbac, access, {k: v for k, v in body.items() if k != "reason"})
    rbac.db.session.commit()
    return jsonify(saved.to_json())
