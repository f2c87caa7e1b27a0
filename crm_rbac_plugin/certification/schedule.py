"""The review schedule of a workspace, and the reminder that a review is due.

A workspace reviews its access every ``interval_days`` days (default
``RBAC_REVIEW_INTERVAL_DAYS``, 90) counted from its last completed
certification run, or from its creation when it has none. Once that date
has passed the review is due; while it stays overdue it falls due again
every interval, so a workspace that ignores one reminder gets the next one
a period later rather than one a day.

:func:`remind` is what ``flask rbac review remind`` runs from cron: for each
workspace whose review is due it sends :data:`..signals.review_due` to its
Owners and Admins and records the due date it reminded for, in one
transaction it commits per workspace. A second run in the same period finds
the date recorded and sends nothing, and two runs at once are serialised on
the schedule row (``SELECT ... FOR UPDATE`` on PostgreSQL; SQLite writes one
at a time).

Only Owners change the schedule (it decides how often the workspace's
access is re-checked and whether changes need a reason); Owners and Admins
read it.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from sqlalchemy.exc import IntegrityError

from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..loader import BYPASS
from ..locking import write_lock
from ..models import utcnow
from ..policy import Access
from ..signals import review_due

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The accepted range of ``interval_days``.
INTERVAL_RANGE = (1, 3650)
#: Where the review pages live, under the settings prefix.
REVIEW_PATH = "/reviews"


@dataclass(frozen=True)
class Schedule:
    """A workspace's schedule as read (a workspace without a row has the defaults)."""

    workspace_id: int
    interval_days: int
    require_reason: bool
    last_reviewed_at: dt.datetime | None
    reminded_due_at: dt.datetime | None
    #: The start the interval counts from: the last review, else the workspace's creation.
    base: dt.datetime

    def due_at(self, now: dt.datetime | None = None) -> dt.datetime:
        """The due date in force at ``now``: the next one, or the latest one passed."""
        now = now or utcnow()
        step = dt.timedelta(days=self.interval_days)
        first = self.base + step
        if now < first:
            return first
        return self.base + step * ((now - self.base) // step)

    def is_due(self, now: dt.datetime | None = None) -> bool:
        now = now or utcnow()
        return self.due_at(now) <= now


def review_link() -> str:
    """The path of the review page (the reminder's link)."""
    return f"{setting('RBAC_SETTINGS_URL_PREFIX') or ''}{REVIEW_PATH}"


def _row(rbac: RBACProtocol, workspace_id: int, *, lock: bool = False) -> Any:
    S = rbac.models.ReviewSchedule
    stmt = sa.select(S).where(S.workspace_id == workspace_id)
    if lock:
        # Re-read the row once locked: another transaction may have changed it since.
        write_lock(rbac.db.session, S, S.workspace_id == workspace_id)
        stmt = stmt.execution_options(populate_existing=True)
    return rbac.db.session.scalars(stmt, execution_options=BYPASS).one_or_none()


def schedule_for(rbac: RBACProtocol, workspace_id: int) -> Schedule:
    """The workspace's schedule, its defaults when no row was saved."""
    return _read(rbac, workspace_id, _row(rbac, workspace_id))


def _read(rbac: RBACProtocol, workspace_id: int, row: Any) -> Schedule:
    W = rbac.models.Workspace
    created = rbac.db.session.scalar(sa.select(W.created_at).where(W.id == workspace_id),
                                     execution_options=BYPASS) or utcnow()
    last = row.last_reviewed_at if row is not None else None
    return Schedule(workspace_id, row.interval_days if row is not None
                    else int(setting("RBAC_REVIEW_INTERVAL_DAYS")),
                    bool(row is not None and row.require_reason), last,
                    row.reminded_due_at if row is not None else None, last or created)


def may_read(rbac: RBACProtocol, access: Access | None) -> bool:
    """Owners and members holding ``settings.view`` (Admins) read the schedule."""
    return bool(access and access.active and (access.is_owner
                                              or rbac.decide(access, "view", "settings")))


def ensure_row(rbac: RBACProtocol, workspace_id: int) -> Any:
    """The workspace's schedule row, created with the defaults if missing (caller commits)."""
    row = _row(rbac, workspace_id, lock=True)
    if row is None:
        row = rbac.models.ReviewSchedule(
            workspace_id=workspace_id, interval_days=int(setting("RBAC_REVIEW_INTERVAL_DAYS")),
            require_reason=False)
        rbac.db.session.add(row)
        rbac.db.session.flush()
    return row


def parse_interval(value: Any) -> int:
    """``interval_days`` as an int in :data:`INTERVAL_RANGE`, else a 400 naming it."""
    low, high = INTERVAL_RANGE
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise ValidationError(f"interval_days must be a whole number from {low} to {high}",
                              field="interval_days")
    try:
        days = int(str(value).strip())
    except ValueError:
        raise ValidationError(f"interval_days must be a whole number from {low} to {high}",
                              field="interval_days") from None
    if not low <= days <= high:
        raise ValidationError(f"interval_days must be from {low} to {high} days",
                              field="interval_days")
    return days


def save(rbac: RBACProtocol, actor: Access | None, *, interval_days: Any = None,
         require_reason: Any = None) -> dict[str, list[Any]]:
    """Change the schedule (Owners only) and audit it; return ``{field: [old, new]}``.

    The values are checked before anything is written; the caller commits.
    """
    if actor is None or not actor.active or not actor.is_owner:
        raise PermissionDenied("Only an Owner can change the review schedule.")
    days = parse_interval(interval_days) if interval_days is not None else None
    if require_reason is not None and not isinstance(require_reason, bool):
        raise ValidationError("require_reason must be true or false", field="require_reason")
    row = ensure_row(rbac, actor.workspace_id)
    changes: dict[str, list[Any]] = {}
    for name, value in (("interval_days", days), ("require_reason", require_reason)):
        if value is not None and getattr(row, name) != value:
            changes[name] = [getattr(row, name), value]
            setattr(row, name, value)
    if changes:
        row.updated_by_membership_id = actor.membership_id
        rbac.audit("review_schedule.changed", workspace_id=actor.workspace_id,
                   actor_ids=(actor.user_id, actor.membership_id),
                   resource="settings", target="access review schedule",
                   before={k: v[0] for k, v in changes.items()},
                   after={k: v[1] for k, v in changes.items()})
        rbac.db.session.flush()
    return changes


def reviewers(rbac: RBACProtocol, workspace_id: int) -> list[int]:
    """Membership ids of the workspace's active Owners and Admins (the reminder's recipients)."""
    m = rbac.models
    now = utcnow()
    rows = rbac.db.session.scalars(
        sa.select(m.Membership).where(m.Membership.workspace_id == workspace_id,
                                      m.Membership.status == "active")
        .order_by(m.Membership.id), execution_options=BYPASS)
    return [mem.id for mem in rows if any(
        mr.role is not None and mr.active_at(now)
        and (mr.role.is_owner or (mr.role.builtin and mr.role.key == "admin"))
        for mr in mem.member_roles)]


def remind_workspace(rbac: RBACProtocol, workspace_id: int,
                     now: dt.datetime | None = None) -> bool:
    """Send ``review_due`` for the workspace if due and not yet sent for this due date.

    Records the due date on the schedule row in the current transaction
    (the caller commits): the signal's receivers write into it too.
    """
    now = now or utcnow()
    if not schedule_for(rbac, workspace_id).is_due(now):
        return False
    row = ensure_row(rbac, workspace_id)  # locked: a concurrent run waits here
    schedule = _read(rbac, workspace_id, row)
    due = schedule.due_at(now)
    if not schedule.is_due(now) or row.reminded_due_at == due:
        return False
    row.reminded_due_at = due
    rbac.db.session.flush()
    name = row.workspace.name if row.workspace is not None else f"#{workspace_id}"
    last = (schedule.last_reviewed_at.date().isoformat() if schedule.last_reviewed_at
            else "never")
    review_due.send(current_app._get_current_object(),  # type: ignore[attr-defined]
                    workspace_id=workspace_id, due_at=due,
                    recipients=reviewers(rbac, workspace_id),
                    summary=(f"The access review of {name} is due (every "
                             f"{schedule.interval_days} days; last completed: {last})."),
                    link=review_link())
    return True


def remind(rbac: RBACProtocol, now: dt.datetime | None = None) -> list[int]:
    """Remind every workspace whose review is due; return the ids reminded.

    Each workspace is one transaction, committed here: a failure in one (a
    concurrent run that created the row first) rolls back that one only.
    """
    W = rbac.models.Workspace
    reminded = []
    for workspace_id in rbac.db.session.scalars(sa.select(W.id).order_by(W.id),
                                                execution_options=BYPASS).all():
        try:
            sent = remind_workspace(rbac, workspace_id, now)
            rbac.db.session.commit()
        except IntegrityError:
            rbac.db.session.rollback()
            continue
        if sent:
            reminded.append(workspace_id)
    return reminded
