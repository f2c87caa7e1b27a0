"""The approval tables: a workspace's approval policy, the requests and their decisions.

An operation that the workspace's policy names (a privileged role given, a
large export, the plan changed ...) is not run when asked: the services
record an :class:`ApprovalRequest` holding the operation's name and the JSON
payload to replay, and run it only once enough distinct approvers approved.
Each approver's vote is an :class:`ApprovalDecision`, unique per request and
member, so one person never counts twice. These rows change nobody's
access, so they are not among :meth:`.base.Models.policy_classes`.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import NEVER_REUSED, fk, ix, pk, uq, utcnow

#: A request is ``pending`` until decided; ``executing`` while the final
#: approval runs it (the conditional UPDATE that takes it there lets exactly
#: one approver through); then ``executed`` or ``failed``. ``rejected``,
#: ``cancelled`` and ``expired`` end it with nothing changed.
REQUEST_STATUSES: tuple[str, ...] = ("pending", "executing", "executed", "failed", "rejected",
                                     "cancelled", "expired")


def define_approval_models(db: Any, Membership: Any) -> tuple[Any, Any, Any]:
    """Create ``(ApprovalPolicy, ApprovalRequest, ApprovalDecision)`` on ``db.Model``."""
    ApprovalRequest = define_request_model(db, Membership, decision=lambda: ApprovalDecision)
    ApprovalDecision = define_decision_model(db, Membership, ApprovalRequest)
    return define_policy_model(db), ApprovalRequest, ApprovalDecision


def define_policy_model(db: Any) -> Any:
    """Create ``ApprovalPolicy``, one workspace's approval policy."""

    class ApprovalPolicy(db.Model):  # type: ignore[name-defined,misc]
        """Which operations of a workspace need approval, and by whom.

        ``operations`` maps an operation name to its threshold: ``0`` for an
        operation that always needs approval once named, N for "more than N
        rows". A workspace without a row needs no approval at all.
        """

        __tablename__ = "rbac_approval_policy"
        __table_args__ = (pk("rbac_approval_policy", "id"), uq("rbac_approval_policy", "workspace_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_approval_policy.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        operations: Mapped[dict[str, int]] = mapped_column(sa.JSON, default=dict)
        approvals_required: Mapped[int] = mapped_column(default=1)
        approver_permission: Mapped[str] = mapped_column(sa.String(100), default="approvals.decide")
        expiry_hours: Mapped[int] = mapped_column(default=72)
        updated_at: Mapped[dt.datetime] = mapped_column(default=utcnow, onupdate=utcnow)
        updated_by_membership_id: Mapped[int | None] = mapped_column()

    return ApprovalPolicy


def define_request_model(db: Any, Membership: Any, *, decision: Any) -> Any:
    """Create ``ApprovalRequest``; ``decision`` returns the decision class (defined after it)."""

    class ApprovalRequest(db.Model):  # type: ignore[name-defined,misc]
        """One operation waiting for (or done with) approval.

        ``download_hash`` is the SHA-256 of an approved export's single-use
        link token (the token itself is shown once, never stored);
        ``content`` holds the file produced under the requester's rights.
        """

        __tablename__ = "rbac_approval_request"
        __table_args__ = (pk("rbac_approval_request", "id"),
                          uq("rbac_approval_request", "download_hash"),
                          ix("rbac_approval_request", "workspace_id", "status"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_approval_request.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        requester_id: Mapped[int] = mapped_column(
            fk("rbac_approval_request.requester_id", "rbac_membership.id",
               ondelete="CASCADE"))
        operation: Mapped[str] = mapped_column(sa.String(40))
        payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
        summary: Mapped[str] = mapped_column(sa.String(300), default="")
        reason: Mapped[str] = mapped_column(sa.Text, default="")
        status: Mapped[str] = mapped_column(sa.String(20), default="pending")
        approvals_required: Mapped[int] = mapped_column(default=1)
        approver_permission: Mapped[str] = mapped_column(sa.String(100), default="approvals.decide")
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        expires_at: Mapped[dt.datetime] = mapped_column()
        decided_at: Mapped[dt.datetime | None] = mapped_column()
        failure: Mapped[str] = mapped_column(sa.Text, default="")
        download_hash: Mapped[str | None] = mapped_column(sa.String(64))
        download_expires_at: Mapped[dt.datetime | None] = mapped_column()
        download_used_at: Mapped[dt.datetime | None] = mapped_column()
        filename: Mapped[str] = mapped_column(sa.String(200), default="")
        content: Mapped[bytes | None] = mapped_column(sa.LargeBinary, deferred=True)

        requester = relationship(Membership)
        decisions = relationship(decision, back_populates="request",
                                 order_by=lambda: decision().id, cascade="all, delete-orphan")

        def __repr__(self) -> str:
            return f"<ApprovalRequest #{self.id} {self.operation} {self.status}>"

    return ApprovalRequest


def define_decision_model(db: Any, Membership: Any, ApprovalRequest: Any) -> Any:
    """Create ``ApprovalDecision``, one approver's vote."""

    class ApprovalDecision(db.Model):  # type: ignore[name-defined,misc]
        """One approver's ``approve`` or ``reject`` of a request, with their reason."""

        __tablename__ = "rbac_approval_decision"
        __table_args__ = (pk("rbac_approval_decision", "id"),
                          uq("rbac_approval_decision", "request_id", "membership_id"))
        id: Mapped[int] = mapped_column(primary_key=True)
        request_id: Mapped[int] = mapped_column(
            fk("rbac_approval_decision.request_id", "rbac_approval_request.id", ondelete="CASCADE"))
        membership_id: Mapped[int] = mapped_column(
            fk("rbac_approval_decision.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        decision: Mapped[str] = mapped_column(sa.String(10))
        reason: Mapped[str] = mapped_column(sa.Text, default="")
        at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        #: The client address of the vote (None: a CLI or job); the vote is judged from it.
        address: Mapped[str | None] = mapped_column(sa.String(64), nullable=True)

        request = relationship(ApprovalRequest, back_populates="decisions")
        member = relationship(Membership)

    return ApprovalDecision
