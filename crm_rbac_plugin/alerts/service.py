"""Reading alerts and moving them on: who may, the filters, the status changes.

The Alerts page, the JSON API and ``flask rbac alerts`` share these functions:

* **Who.** Owners and members holding ``settings.manage`` (Admins) read,
  acknowledge and resolve a workspace's alerts (:func:`may_read`); anyone else
  is refused, since an alert tells who is being watched for what. Only Owners
  change the thresholds (:mod:`.thresholds`).
* **Where.** Only the acting member's workspace: another workspace's alert id
  is "not found" (404), exactly like an id that does not exist.
* **Not one's own.** The member an alert is about never acknowledges or
  resolves it (403, as approvals and reviews refuse self-decisions): an alert
  watches that member, so another Owner or Admin judges it.
* **Statuses** only move forward: open → acknowledged → resolved (an open one
  may be resolved at once). Anything else is a 409 that changes nothing. Each
  change records who and when on the alert and writes one ``alert.acknowledged``
  or ``alert.resolved`` audit event; the caller commits.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import audit
from ..errors import PermissionDenied, RuleConflict, ValidationError
from ..models import ALERT_SEVERITIES, ALERT_STATUSES, utcnow
from ..policy import Access
from .rules import RULES

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["AlertNotFound", "alerts_for", "get_alert", "may_read", "parse_filters",
           "set_status"]

#: The status each action moves an alert to, and the statuses it may leave.
MOVES: dict[str, tuple[str, tuple[str, ...]]] = {
    "acknowledge": ("acknowledged", ("open",)),
    "resolve": ("resolved", ("open", "acknowledged")),
}
#: The most alerts one list returns (newest first).
LIST_LIMIT = 500


class AlertNotFound(ValidationError):
    """No alert with that id in the member's workspace (a 404)."""

    status = 404


def may_read(rbac: RBACProtocol, access: Access | None) -> bool:
    """Whether ``access`` may see and handle alerts: an Owner, or ``settings.manage``."""
    if access is None or not access.active:
        return False
    return access.is_owner or bool(rbac.decide(access, "manage", "settings"))


def require_reader(rbac: RBACProtocol, access: Access | None) -> Access:
    if access is None or not may_read(rbac, access):
        raise PermissionDenied("Only Owners and Admins can see alerts.", resource="settings",
                               action="manage")
    return access


def parse_filters(status: Any = None, severity: Any = None, rule: Any = None,
                  ) -> dict[str, str | None]:
    """Filter values, checked: an unknown one is a 400 naming its field (empty: all)."""
    out: dict[str, str | None] = {}
    for name, value, allowed in (("status", status, ALERT_STATUSES),
                                 ("severity", severity, ALERT_SEVERITIES),
                                 ("rule", rule, RULES)):
        text = str(value).strip() if value is not None else ""
        if text and text not in allowed:
            raise ValidationError(f"must be one of {', '.join(allowed)}", field=name)
        out[name] = text or None
    return out


def alerts_for(rbac: RBACProtocol, access: Access | None, *, status: str | None = None,
               severity: str | None = None, rule: str | None = None,
               limit: int = LIST_LIMIT) -> list[Any]:
    """The workspace's alerts, newest first, filtered (see :func:`parse_filters`)."""
    access = require_reader(rbac, access)
    return query_alerts(rbac, access.workspace_id, status=status, severity=severity, rule=rule,
                        limit=limit)


def query_alerts(rbac: RBACProtocol, workspace_id: int, *, status: str | None = None,
                 severity: str | None = None, rule: str | None = None,
                 limit: int = LIST_LIMIT) -> list[Any]:
    """:func:`alerts_for` without the reader check: for the CLI, which runs as the operator."""
    A = rbac.models.Alert
    stmt = sa.select(A).where(A.workspace_id == workspace_id)
    if status:
        stmt = stmt.where(A.status == status)
    if severity:
        stmt = stmt.where(A.severity == severity)
    if rule:
        stmt = stmt.where(A.rule == rule)
    stmt = stmt.order_by(A.created_at.desc(), A.id.desc()).limit(limit)
    return list(rbac.db.session.scalars(stmt))


def open_count(rbac: RBACProtocol, workspace_id: int) -> int:
    """How many alerts of the workspace are open (the tab's badge)."""
    A = rbac.models.Alert
    return int(rbac.db.session.scalar(sa.select(sa.func.count(A.id)).where(
        A.workspace_id == workspace_id, A.status == "open")) or 0)


def get_alert(rbac: RBACProtocol, access: Access | None, alert_id: Any) -> Any:
    """Alert ``alert_id`` of the member's workspace, else :class:`AlertNotFound`."""
    access = require_reader(rbac, access)
    A = rbac.models.Alert
    try:
        ident = int(alert_id)
    except (TypeError, ValueError):
        raise ValidationError("must be an alert id", field="alert_id") from None
    alert = rbac.db.session.scalar(sa.select(A).where(A.id == ident,
                                                      A.workspace_id == access.workspace_id))
    if alert is None:
        raise AlertNotFound("No alert with that id in this workspace.", field="alert_id")
    return alert


def involved(alert: Any) -> set[int]:
    """The members whose conduct ``alert`` puts under scrutiny: the member it is about and,
    for a privilege given, the member who gave it (``detail.by_membership_id``).

    Neither acknowledges nor resolves it, so a second person always looks at
    a privilege handed out; with no other Owner or Admin the alert stays open
    (an open alert costs nothing, a self-closed one hides the change).
    """
    detail = alert.detail if isinstance(alert.detail, dict) else {}
    ids = {alert.membership_id, detail.get("by_membership_id")}
    return {i for i in ids if isinstance(i, int) and not isinstance(i, bool)}


def set_status(rbac: RBACProtocol, access: Access | None, alert_id: Any, action: str) -> Any:
    """``acknowledge`` or ``resolve`` an alert (the caller commits); audited."""
    if action not in MOVES:
        raise ValidationError("must be acknowledge or resolve", field="action")
    access = require_reader(rbac, access)
    alert = get_alert(rbac, access, alert_id)
    if access.membership_id in involved(alert):
        raise PermissionDenied("You cannot acknowledge or resolve an alert about yourself or "
                               "a change you made (segregation of duties): another Owner or "
                               "Admin must; until there is one, it stays open.",
                               field="alert_id")
    status, sources = MOVES[action]
    if alert.status not in sources:
        raise RuleConflict(f"This alert is already {alert.status}.", field="alert_id")
    before = alert.status
    now = utcnow()
    alert.status = status
    if status == "acknowledged":
        alert.acknowledged_at, alert.acknowledged_by_id = now, access.membership_id
    else:
        alert.resolved_at, alert.resolved_by_id = now, access.membership_id
    audit.record(rbac, f"alert.{status}", workspace_id=alert.workspace_id, resource="settings",
                 target=f"alert #{alert.id} {alert.rule}", before={"status": before},
                 after={"status": status}, alert_id=alert.id, rule=alert.rule,
                 severity=alert.severity)
    return alert


def alert_json(alert: Any) -> dict[str, Any]:
    """An alert as the API and the CLI show it."""
    return {"id": alert.id, "rule": alert.rule, "severity": alert.severity,
            "status": alert.status, "membership_id": alert.membership_id,
            "summary": alert.summary, "detail": alert.detail,
            "created_at": alert.created_at.isoformat() if alert.created_at else None,
            "acknowledged_at": (alert.acknowledged_at.isoformat()
                                if alert.acknowledged_at else None),
            "acknowledged_by_id": alert.acknowledged_by_id,
            "resolved_at": alert.resolved_at.isoformat() if alert.resolved_at else None,
            "resolved_by_id": alert.resolved_by_id}
