"""Read the audit trail: query-arg filters, the events query, JSON and CSV rows."""

from __future__ import annotations

import datetime as dt
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import csvsafe
from ..models import naive_utc

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def parse_filters(args: Any) -> dict[str, Any]:
    """Read ``actor``, ``action``, ``resource``, ``from`` and ``to`` from query args.

    ``from``/``to`` are ISO dates or instants (UTC); a bare ``to`` date
    includes that whole day. Raises ValueError naming the bad argument.
    """
    out: dict[str, Any] = {}
    actor_arg = (args.get("actor") or "").strip()
    if actor_arg:
        try:
            out["actor"] = int(actor_arg)
        except ValueError:
            raise ValueError("actor: expected a membership id") from None
    for key in ("action", "resource"):
        value = (args.get(key) or "").strip()
        if value:
            out[key] = value[:60]
    for key in ("from", "to"):
        value = (args.get(key) or "").strip()
        if not value:
            continue
        try:
            when = dt.datetime.fromisoformat(value)
        except ValueError:
            raise ValueError(f"{key}: expected a date such as 2026-11-01") from None
        when = naive_utc(when)
        if key == "to" and len(value) <= 10:
            when += dt.timedelta(days=1)
        out[key] = when
    return out


def events_query(rbac: RBACProtocol, workspace_id: int, filters: dict[str, Any]) -> Any:
    """Return the SELECT of a workspace's events matching ``filters``, newest first."""
    A = rbac.models.AuditEvent
    stmt = sa.select(A).where(A.workspace_id == workspace_id)
    if "actor" in filters:
        stmt = stmt.where(A.actor_membership_id == filters["actor"])
    if "action" in filters:
        stmt = stmt.where(A.action == filters["action"])
    if "resource" in filters:
        stmt = stmt.where(A.resource == filters["resource"])
    if "from" in filters:
        stmt = stmt.where(A.at >= filters["from"])
    if "to" in filters:
        stmt = stmt.where(A.at < filters["to"])
    return stmt.order_by(A.at.desc(), A.id.desc())


def event_json(ev: Any) -> dict[str, Any]:
    return {"id": ev.id, "workspace_id": ev.workspace_id, "at": ev.at.isoformat() + "Z",
            "actor_user_id": ev.actor_user_id, "actor_membership_id": ev.actor_membership_id,
            "action": ev.action, "resource": ev.resource, "target": ev.target,
            "before": ev.before, "after": ev.after, "detail": ev.detail, "ip": ev.ip}


CSV_COLUMNS = ("id", "at", "actor_user_id", "actor_membership_id", "action", "resource",
               "target", "before", "after", "detail", "ip")


def csv_row(ev: Any) -> list[str]:
    """One CSV row; JSON columns as JSON text, formula-looking cells neutralised."""
    data = event_json(ev)
    out = []
    for col in CSV_COLUMNS:
        value = data[col]
        text = "" if value is None else (json.dumps(value, sort_keys=True)
                                         if isinstance(value, (dict, list)) else str(value))
        out.append(csvsafe.safe_cell(text))
    return out
