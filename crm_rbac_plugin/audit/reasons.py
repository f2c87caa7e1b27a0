"""The reason of a permission change: read it, require it where the workspace says so.

A workspace whose review schedule has ``require_reason`` set refuses a
permission change that carries no reason (:func:`..context.current_reason`)
with a :class:`~..errors.ValidationError` naming ``reason``. The check runs
where the change's audit event is written (``before_commit``), so every path
that commits a permission change (a page, the API, the CLI, Flask-Admin, a
script) meets it, and the refused transaction writes nothing.

What counts as a permission change here: roles, grants, field rules and
segregation-of-duties pairs; role assignments of a member who has joined
(an invitation's assignments give nothing until it is accepted, and the
invitee who accepts changes nobody's rights; a membership created with its
first roles, by a sign-up or an adoption, is joining); deactivating,
reactivating or removing a member; changing the plan. Creating a
workspace, joining it and profile edits do not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..config import setting
from ..context import current_reason
from ..errors import ValidationError
from ..loader import BYPASS

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Kinds whose every change is a permission change.
ALWAYS = frozenset({"role", "grant", "field_rule", "sod"})


def _counts(session: Session, rbac: RBACProtocol, change: dict[str, Any],
            joining: set[Any]) -> bool:
    """Whether ``change`` changes someone's rights in the sense of the reason rule.

    ``joining``: memberships created in the same transaction, whose first
    roles come with them (an invitation, a sign-up, an adoption).
    """
    kind, op = change["kind"], change["op"]
    values = change["after"] or change["before"] or {}
    if kind in ALWAYS:
        return True
    if kind == "assignment":
        if values.get("membership_id") in joining:
            return False
        member = session.get(rbac.models.Membership, values.get("membership_id"),
                             execution_options=BYPASS)
        return member is None or member.status != "pending"
    if kind == "workspace":  # the plan decides which modules anyone reaches
        return op == "changed" and "plan" in (change["changed"] or ())
    if kind == "member":
        if op == "deleted":
            return (change["before"] or {}).get("status") != "pending"
        statuses = {(change["before"] or {}).get("status"), (change["after"] or {}).get("status")}
        return op == "changed" and "inactive" in statuses
    return False


def required(session: Session, rbac: RBACProtocol, workspace_id: int | None) -> bool:
    """Whether the workspace requires a reason for permission changes."""
    schedule = rbac.models.ReviewSchedule
    if workspace_id is None or schedule is None:
        return False
    return bool(session.scalar(sa.select(schedule.require_reason).where(
        schedule.workspace_id == workspace_id), execution_options=BYPASS))


def reason_for(session: Session, rbac: RBACProtocol, workspace_id: int | None,
               changes: list[dict[str, Any]], described: Any = None) -> str | None:
    """The reason to store on the workspace's event; refuse a missing one it requires.

    A reason the code wrote on the event it described itself
    (``rbac.audit(..., reason=...)``, as a certification revoke does) counts.
    """
    reason = current_reason() or next((c["reason"] for c in changes if c.get("reason")), None)
    if reason is None and described is not None:
        given = (described.detail or {}).get("reason")
        reason = given.strip() or None if isinstance(given, str) else None
    if reason is not None:
        limit = int(setting("RBAC_CHANGE_REASON_MAX"))
        if len(reason) > limit:
            raise ValidationError(f"the reason is longer than {limit} characters", field="reason")
        return reason
    joining = {c["key"] for c in changes if c["kind"] == "member" and c["op"] == "created"}
    if (any(_counts(session, rbac, c, joining) for c in changes)
            and required(session, rbac, workspace_id)):
        raise ValidationError("This workspace requires a reason for every permission change: "
                              "say why in the reason field.", field="reason")
    return None
