"""A member's counted operations add up over a rolling day: splitting one does not dodge its threshold.

A policy that asks approval for exports over 1,000 rows would ask nothing
of ten exports of 900 rows each if it judged each export alone. So the gate
judges a counted operation (:data:`..gate.COUNTED`: exports, bulk deletes)
by its rows *plus* the rows of the same operation the member ran without
approval in the last :data:`WINDOW_HOURS` hours, and asks approval when
that sum passes the threshold.

Each counted operation the gate lets through adds its rows to the member's
counter of the current hour: a row of the alert counters' table
(``rbac_alert_counter``, rule ``approval.<operation>``), written by the
alert engine's one upsert, in the operation's own transaction, so an
operation that fails and rolls back counts nothing. An approved replay
passes the gate without counting: the approvers saw those rows. Counters
are pruned with the alert counters (``flask rbac alerts prune``), which
keeps at least a day of them whatever ``RBAC_ALERT_COUNTER_DAYS`` says, so
every window this reads is still there.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING

import sqlalchemy as sa

from ..alerts.engine import bump
from ..alerts.rules import Count, hour_start
from ..models import utcnow
from ..policy import Access

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["WINDOW_HOURS", "add", "rule", "used"]

#: The rolling window over which a member's counted operations add up.
WINDOW_HOURS = 24
#: A threshold no counter reaches: these counters raise no alert.
_NEVER = 2**62


def rule(operation: str) -> str:
    """The counter rule of a counted operation."""
    return f"approval.{operation}"


def used(rbac: RBACProtocol, actor: Access, operation: str, now: dt.datetime | None = None) -> int:
    """Rows of ``operation`` the member ran without approval in the last :data:`WINDOW_HOURS`."""
    C = rbac.models.AlertCounter
    since = hour_start(now or utcnow()) - dt.timedelta(hours=WINDOW_HOURS - 1)
    total = rbac.db.session.scalar(sa.select(sa.func.coalesce(sa.func.sum(C.count), 0)).where(
        C.workspace_id == actor.workspace_id, C.membership_id == actor.membership_id,
        C.rule == rule(operation), C.window_start >= since))
    return int(total or 0)


def add(rbac: RBACProtocol, actor: Access, operation: str, rows: int,
        now: dt.datetime | None = None) -> None:
    """Count ``rows`` of ``operation`` in the member's current hour (the caller's transaction)."""
    if rows <= 0 or actor.membership_id is None:
        return
    bump(rbac.db.session, rbac.models.AlertCounter.__table__,
         Count(rule(operation), actor.workspace_id, actor.membership_id,
               hour_start(now or utcnow()), rows, _NEVER, ""))
