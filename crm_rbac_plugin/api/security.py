"""API endpoints for the workspace's security policy: ``GET`` and ``PATCH /security-policy``.

The same service as the Security page (:mod:`..security.editing`), so the
same rules: Owners and ``settings.manage`` holders read, only Owners change;
a bad value is a 400 naming its field, a change that would lock the caller
out a 409 (``error: conflict``); nothing is saved on a refusal.
``allowed_devices`` is a list of ``desktop``, ``mobile``, ``tablet``. A
``PATCH`` needs a recent MFA check of a caller who is enrolled or must be
(403 ``mfa_step_up_required``), checked after the Owner check.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, NoReturn, TypeVar

from flask import current_app, jsonify, request
from flask.typing import ResponseReturnValue

from ..identity import request_state
from ..policy import Access
from ..proxies import current_rbac
from ..security import editing, stepup
from ..security.policy import FIELDS, LIMITS, Policy, policy_for
from .blueprint import active_access, bp, check_keys, forbidden, integers, json_body

F = TypeVar("F", bound=Callable[..., Any])

POLICY_KEYS = frozenset(FIELDS)


def policy_json(policy: Policy) -> dict[str, Any]:
    """The policy as the API shows it: every field, and whether a row holds it."""
    return {"policy": {name: getattr(policy, name) for name in FIELDS},
            "saved": policy.saved, "workspace_id": policy.workspace_id}


def _refuse(access: Access, reason: str) -> NoReturn:
    """Refuse with a 403, audited as ``access.denied`` like every refused permission."""
    current_rbac.signal_denied(access, "manage", "settings", None, reason)
    raise forbidden(reason)


def owner_only(view: F) -> F:
    """Refuse (403) anyone but an active Owner before the step-up check runs."""
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        access = active_access()
        if not editing.may_edit(access):
            _refuse(access, "Only an Owner can change the security policy.")
        return current_app.ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]


@bp.get("/security-policy")
def security_policy() -> ResponseReturnValue:
    """The workspace's security policy (Owners, and members holding settings.manage)."""
    access = active_access()
    if not editing.may_read(current_rbac, access):
        _refuse(access, "Only Owners and Admins can see the security policy.")
    return jsonify(policy_json(policy_for(current_rbac, access.workspace_id)))


@bp.patch("/security-policy")
@owner_only
@stepup.require_recent_mfa
def update_security_policy() -> ResponseReturnValue:
    """Change the keys sent; answer the saved policy and ``{field: [old, new]}``."""
    body = json_body()
    check_keys(body, POLICY_KEYS)
    integers(body, LIMITS)
    rbac = current_rbac
    access = active_access()
    state = stepup.mfa_state()
    changes = {k: v for k, v in body.items() if k != "reason"}
    # A token is no device (security.devices): only a session's own agent is checked.
    agent = None if request_state().token_auth else request.user_agent.string
    result = editing.save(rbac, access, changes, ip=request.remote_addr,
                          enrolled=bool(state is not None and state.enrolled), agent=agent)
    rbac.db.session.commit()
    return jsonify({**policy_json(policy_for(rbac, access.workspace_id)),
                    "changes": result.changes})
