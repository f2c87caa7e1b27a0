""""View as": an Owner or Admin sees the app exactly as a chosen member would.

Starting sets :data:`SESSION_KEY` in the Flask session; from then on
:meth:`RBAC.current_access` returns the *member's* access (so every filter,
decorator and template helper answers as for them), the real access is kept
on ``g._rbac_real_access`` (the audit trail names the real actor), every flush
that would write anything but an audit event is refused (read-only), and
templates get ``rbac_view_as`` to show a banner. Starting and stopping are
audited. Nobody views as an Owner unless they are one; API token requests
never view as anyone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import g, has_request_context, session
from sqlalchemy import event
from sqlalchemy.orm import Session

from ..errors import PermissionDenied
from ..guard import NO_POLICY_EFFECT, _changed_keys
from ..policy import Access

if TYPE_CHECKING:
    from ..extension import RBAC

SESSION_KEY = "rbac_view_as"
#: The permission that lets a member view the app as another (Owners and Admins).
PERMISSION = ("settings", "view")


def refusal(rbac: RBAC, real: Access | None, target: Access | None) -> str | None:
    """Why ``real`` may not view as ``target`` (None: they may)."""
    if real is None or not real.active:
        return "You are not an active member of this workspace."
    if not rbac.decide(real, PERMISSION[1], PERMISSION[0]):
        return "Only Owners and Admins can view the workspace as another member."
    if target is None or target.workspace_id != real.workspace_id:
        return "No such member in this workspace."
    if target.membership_id == real.membership_id:
        return "You are already yourself."
    if target.is_owner and not real.is_owner:
        return "Only an Owner can view the workspace as an Owner."
    return None


def resolve(rbac: RBAC, real: Access | None) -> Access | None:
    """Return the access in force for this request: the viewed member's while viewing as."""
    g.pop("_rbac_real_access", None)
    if real is None or g.get("_rbac_token_auth") or SESSION_KEY not in session:
        return real
    target = rbac.access_for(session[SESSION_KEY])
    if refusal(rbac, real, target) is not None:
        session.pop(SESSION_KEY, None)  # e.g. the viewer lost Admin meanwhile
        return real
    g._rbac_real_access = real
    return target


def active() -> bool:
    return has_request_context() and g.get("_rbac_real_access") is not None


def banner(rbac: RBAC) -> dict[str, Any] | None:
    """Template context ``rbac_view_as``: who is being viewed, or None."""
    if not has_request_context():
        return None
    try:
        rbac.current_access()
    except Exception:  # noqa: BLE001 - a template helper must not break a page
        return None
    real = g.get("_rbac_real_access")
    if real is None:
        return None
    viewed = g.get("_rbac_access")
    membership = rbac.db.session.get(rbac.models.Membership, viewed.membership_id)
    return {"membership": membership, "access": viewed, "real": real,
            "roles": ", ".join(viewed.roles)}


def install(rbac: RBAC, db_session: Any) -> None:
    event.listen(db_session, "before_flush", lambda s, c, i: _refuse_writes(rbac, s))


def _refuse_writes(rbac: RBAC, db_session: Session) -> None:
    if not active():
        return
    for obj in (*db_session.new, *db_session.dirty, *db_session.deleted):
        if isinstance(obj, rbac.AuditEvent) and obj in db_session.new:
            continue
        if obj in db_session.dirty and not (_changed_keys(obj) - NO_POLICY_EFFECT):
            continue
        raise PermissionDenied("You are viewing the workspace as another member: "
                               "nothing can be changed. Stop viewing as to make changes.")
