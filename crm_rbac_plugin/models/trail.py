"""The append-only audit trail's table and the invitations' table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import NEVER_REUSED, fk, ix, pk, utcnow

# -- audit trail (written by crm_rbac_plugin.audit) --------------------------------------

#: The audit page's equality filters with an index each: (column, index key).
AUDIT_FILTER_INDEXES = (("action", "action"), ("actor_membership_id", "actor"),
                        ("resource", "resource"))


def define_audit_model(db: Any, user_key_type: Any = None) -> Any:
    """Create the append-only ``rbac_audit_event`` table on ``db.Model``.

    Rows are written by :mod:`.audit` and never updated or deleted except by
    :func:`.audit.purge_before` (retention); the flush refuses anything else.
    """

    class AuditEvent(db.Model):  # type: ignore[name-defined,misc]
        """Who did what, when: one permission change, refusal, export or view-as."""

        __tablename__ = "rbac_audit_event"
        __table_args__ = (
            pk("rbac_audit_event", "id"),
            ix("rbac_audit_event", "workspace_id", "at", key="ws_at"),
            # One index per filter of the audit page, ending with its order
            # (newest first), so that a filter's page is read in order from
            # its index however rare its events are (tests/test_audit_plans.py).
            *(ix("rbac_audit_event", "workspace_id", column, "at", "id", key=f"ws_{key}_at")
              for column, key in AUDIT_FILTER_INDEXES),
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        # No foreign keys: the log outlives the workspaces, members and users it names.
        workspace_id: Mapped[int | None] = mapped_column()
        at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        actor_user_id: Mapped[Any] = mapped_column(
            user_key_type if user_key_type is not None else sa.Integer(), nullable=True)
        actor_membership_id: Mapped[int | None] = mapped_column()
        action: Mapped[str] = mapped_column(sa.String(60))
        resource: Mapped[str] = mapped_column(sa.String(60), default="")
        target: Mapped[str] = mapped_column(sa.Text, default="")
        before: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
        after: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
        detail: Mapped[Any] = mapped_column(sa.JSON, nullable=True)
        ip: Mapped[str | None] = mapped_column(sa.String(64))

        def __repr__(self) -> str:
            return f"<AuditEvent {self.id} {self.action} ws={self.workspace_id}>"

    return AuditEvent


# -- team (used by crm_rbac_plugin.team) --------------------------------------------------


def define_team_models(db: Any, Membership: Any) -> Any:
    """Create the ``rbac_invitation`` table on ``db.Model``.

    An invitation is single use: the emailed token carries its id and a nonce
    whose SHA-256 is stored here; resending replaces the nonce (the old link
    stops working) and accepting or revoking ends it.
    """

    class Invitation(db.Model):  # type: ignore[name-defined,misc]
        """An emailed invitation to join a workspace with one or more roles."""

        __tablename__ = "rbac_invitation"
        __table_args__ = (pk("rbac_invitation", "id"),
                          ix("rbac_invitation", "workspace_id", "email", key="ws_email"),
                          ix("rbac_invitation", "membership_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_invitation.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        email: Mapped[str] = mapped_column(sa.String(255))
        role_ids: Mapped[list[int]] = mapped_column(sa.JSON, default=list)
        # The Pending membership made at invite time (None once revoked and removed).
        membership_id: Mapped[int | None] = mapped_column(
            fk("rbac_invitation.membership_id", "rbac_membership.id", ondelete="SET NULL"))
        invited_by_id: Mapped[int | None] = mapped_column(
            fk("rbac_invitation.invited_by_id", "rbac_membership.id", ondelete="SET NULL"))
        # True when the invite created the user account (completed on acceptance).
        new_user: Mapped[bool] = mapped_column(default=False)
        nonce_hash: Mapped[str] = mapped_column(sa.String(64))
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        sent_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        expires_at: Mapped[dt.datetime] = mapped_column()
        accepted_at: Mapped[dt.datetime | None] = mapped_column()
        revoked_at: Mapped[dt.datetime | None] = mapped_column()

        membership = relationship(Membership, foreign_keys=[membership_id])
        invited_by = relationship(Membership, foreign_keys=[invited_by_id])

        @property
        def state(self) -> str:
            """``pending``, ``accepted``, ``revoked`` or ``expired``."""
            if self.accepted_at is not None:
                return "accepted"
            if self.revoked_at is not None:
                return "revoked"
            return "expired" if self.expires_at <= utcnow() else "pending"

        def __repr__(self) -> str:
            return f"<Invitation {self.id} {self.email!r} ws={self.workspace_id}>"

    return Invitation
