"""Seats per plan: active plus pending members, counted under the workspace row's lock."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..config import setting
from ..errors import QuotaExceeded
from ..loader import BYPASS

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Statuses that hold a seat: a pending invitation reserves the seat it will take.
SEAT_STATUSES = ("active", "pending")


@dataclass(frozen=True)
class SeatUsage:
    """A workspace's seats: ``limit`` None means the plan has none."""

    plan: str
    used: int
    limit: int | None

    @property
    def free(self) -> int | None:
        return None if self.limit is None else max(self.limit - self.used, 0)


def seat_limit(plan: str) -> int | None:
    """The seats ``plan`` allows (``RBAC_PLAN_SEATS``); None: no limit."""
    value = (setting("RBAC_PLAN_SEATS") or {}).get(plan)
    return None if value is None else int(value)


def _count(rbac: RBACProtocol, session: Session, workspace_id: int) -> int:
    M = rbac.models.Membership
    with session.no_autoflush:
        return int(session.scalar(
            sa.select(sa.func.count(M.id)).where(M.workspace_id == workspace_id,
                                                 M.status.in_(SEAT_STATUSES)),
            execution_options=BYPASS) or 0)


def seat_usage(rbac: RBACProtocol, workspace: Any) -> SeatUsage:
    """The seats ``workspace`` uses and the limit of its plan (for the plan page and API)."""
    return SeatUsage(workspace.plan, _count(rbac, rbac.db.session, workspace.id),
                     seat_limit(workspace.plan))


def _taking_seats(rbac: RBACProtocol, session: Session) -> dict[Any, int]:
    """Seats the flush takes, by workspace: new active or pending members, reactivations."""
    M = rbac.models.Membership
    taking: dict[Any, int] = {}
    for obj in session.new:
        if isinstance(obj, M) and obj.status in SEAT_STATUSES:
            ws = obj.workspace_id if obj.workspace_id is not None else getattr(obj.workspace, "id", None)
            taking[ws] = taking.get(ws, 0) + 1
    for obj in session.dirty:
        if not isinstance(obj, M) or obj.status not in SEAT_STATUSES:
            continue
        before = sa.inspect(obj).attrs.status.history.deleted
        if before and before[0] not in SEAT_STATUSES:
            taking[obj.workspace_id] = taking.get(obj.workspace_id, 0) + 1
    return taking


def lock_workspace_row(rbac: RBACProtocol, session: Session, workspace_id: int) -> None:
    """Write the workspace row (its policy version, which a membership change bumps anyway).

    Concurrent seat-takers of one workspace wait here for each other, on
    PostgreSQL (row lock) and SQLite (write lock), before they count.
    """
    W = rbac.models.Workspace.__table__
    session.connection().execute(sa.update(W).where(W.c.id == workspace_id)
                                 .values(policy_version=W.c.policy_version + 1))


def check_seats(rbac: RBACProtocol, session: Session) -> None:
    """Refuse (409) a flush that would give a workspace more seats than its plan allows."""
    taking = _taking_seats(rbac, session)
    W = rbac.models.Workspace
    for workspace_id, count in sorted(taking.items(), key=lambda kv: str(kv[0])):
        if workspace_id is None:
            continue  # a workspace created in this very flush: no members yet
        with session.no_autoflush:
            plan = session.scalar(sa.select(W.plan).where(W.id == workspace_id))
        limit = seat_limit(plan) if plan is not None else None
        if limit is None:
            continue
        lock_workspace_row(rbac, session, workspace_id)
        used = _count(rbac, session, workspace_id)
        if used + count > limit:
            raise QuotaExceeded(
                f"The {plan} plan allows {limit} seat(s) (active plus pending members) and "
                f"{used} are taken: deactivate a member, revoke an invitation or change "
                "the plan first.", limit="seats", allowed=limit, used=used)
