"""The access-review tables: a review schedule per workspace, certification runs and items.

A schedule row holds how often a workspace reviews its access, whether a
permission change needs a written reason, when the last review was
completed and for which due date the last reminder went out (so a reminder
is sent once per due period, however often cron runs the command).

A run and its items are the record a compliance report is built from: who
started and completed it and when, and for each member on the list the
roles that put them there, the decision, who decided, when and what came
of it. Names and roles are copied onto the item when the run starts, so the
record still reads after a member or a role is deleted. None of these
tables changes anyone's access: they are not policy classes.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import NEVER_REUSED, fk, ix, pk, uq, utcnow

#: The decisions a reviewer records on an item.
DECISIONS: tuple[str, ...] = ("keep", "revoke")
#: A run is ``open`` until its reviewer completes it.
RUN_STATUSES: tuple[str, ...] = ("open", "completed")


def define_certification_models(db: Any, Workspace: Any) -> tuple[Any, Any, Any]:
    """Create ``ReviewSchedule``, ``CertificationRun`` and ``CertificationItem`` on ``db.Model``."""
    return (define_schedule_model(db, Workspace), *define_run_models(db))


def define_schedule_model(db: Any, Workspace: Any) -> Any:
    """Create ``ReviewSchedule``, one workspace's review cadence and reason rule."""

    class ReviewSchedule(db.Model):  # type: ignore[name-defined,misc]
        """A workspace's review cadence, its reason rule and its reminder state.

        A workspace without a row reviews every ``RBAC_REVIEW_INTERVAL_DAYS``
        days from its creation and needs no reason: the row is written when
        an Owner first saves the schedule, or when a reminder is recorded.
        """

        __tablename__ = "rbac_review_schedule"
        __table_args__ = (pk("rbac_review_schedule", "id"), uq("rbac_review_schedule", "workspace_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_review_schedule.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        interval_days: Mapped[int] = mapped_column(default=90)
        #: Whether every permission change in the workspace needs a written reason.
        require_reason: Mapped[bool] = mapped_column(default=False)
        #: When the last certification run was completed (None: never).
        last_reviewed_at: Mapped[dt.datetime | None] = mapped_column()
        #: The due date the last ``review_due`` reminder was sent for.
        reminded_due_at: Mapped[dt.datetime | None] = mapped_column()
        updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
        updated_by_membership_id: Mapped[int | None] = mapped_column()

        workspace = relationship(Workspace)

    return ReviewSchedule


def define_run_models(db: Any) -> tuple[Any, Any]:
    """Create ``CertificationRun`` and ``CertificationItem``."""

    class CertificationRun(db.Model):  # type: ignore[name-defined,misc]
        """One certification: who started and completed it, when, and for which resource."""

        __tablename__ = "rbac_certification_run"
        __table_args__ = (pk("rbac_certification_run", "id"),
                          ix("rbac_certification_run", "workspace_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_certification_run.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        #: The resource whose members were added to the privileged ones ("" for none).
        resource: Mapped[str] = mapped_column(sa.String(80), default="")
        status: Mapped[str] = mapped_column(sa.String(20), default="open")
        started_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        started_by_membership_id: Mapped[int | None] = mapped_column()
        started_by_name: Mapped[str] = mapped_column(sa.String(255), default="")
        completed_at: Mapped[dt.datetime | None] = mapped_column()
        completed_by_membership_id: Mapped[int | None] = mapped_column()
        completed_by_name: Mapped[str] = mapped_column(sa.String(255), default="")

        items = relationship(lambda: CertificationItem, back_populates="run",
                             cascade="all, delete-orphan",
                             order_by=lambda: CertificationItem.id)

    class CertificationItem(db.Model):  # type: ignore[name-defined,misc]
        """One member to certify in a run, with the decision and its outcome."""

        __tablename__ = "rbac_certification_item"
        __table_args__ = (pk("rbac_certification_item", "id"),
                          ix("rbac_certification_item", "run_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        run_id: Mapped[int] = mapped_column(
            fk("rbac_certification_item.run_id", "rbac_certification_run.id", ondelete="CASCADE"))
        #: The member (no foreign key: the record outlives a deleted membership).
        membership_id: Mapped[int] = mapped_column()
        member_name: Mapped[str] = mapped_column(sa.String(255), default="")
        #: Why the member is listed: "privileged", "resource" or both, comma-separated.
        why: Mapped[str] = mapped_column(sa.String(80), default="")
        #: The roles in force that list the member, each with its source: ``{"source":
        #: "direct", "member_role_id", "role_id", "role"}`` (a revoke takes these away) or
        #: ``{"source": "department", "department_role_id", "role_id", "role",
        #: "department_id", "department"}`` (see :mod:`..certification.lines`).
        roles: Mapped[list[dict[str, Any]]] = mapped_column(sa.JSON, default=list)
        decision: Mapped[str | None] = mapped_column(sa.String(20))
        decided_at: Mapped[dt.datetime | None] = mapped_column()
        decided_by_membership_id: Mapped[int | None] = mapped_column()
        decided_by_name: Mapped[str] = mapped_column(sa.String(255), default="")
        #: What came of the decision: "kept", "revoked", or "refused: <why>".
        outcome: Mapped[str] = mapped_column(sa.Text, default="")
        reason: Mapped[str] = mapped_column(sa.Text, default="")

        run = relationship(CertificationRun, back_populates="items")

    return CertificationRun, CertificationItem
