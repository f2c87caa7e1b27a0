"""The notification tables: one row per (member, event), and each member's choices.

``rbac_notification`` is at once the member's in-app list and the mail
outbox (a transactional outbox): a row is added to the session inside the
transaction of the change it reports, so a rollback leaves neither a row
nor a mail, and the mail goes out only after the commit (inline after the
request, or ``flask rbac notify send``). ``mail_state`` says what the mail
side still owes: ``pending`` (due at ``next_attempt_at``), ``digest``
(waits for the daily digest), ``sent``, ``digested`` (sent in a digest),
``failed`` (gave up after the
maximum attempts) or ``skipped`` (in-app only).

``rbac_notification_preference`` holds a member's channel per category;
a category without a row follows ``Membership.notify_email`` (mail when
ticked, in-app only otherwise).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import NEVER_REUSED, fk, ix, pk, uq, utcnow

#: What a notification's mail side owes (see the module docstring).
MAIL_STATES: tuple[str, ...] = ("pending", "digest", "sent", "digested", "failed", "skipped")


def define_notify_models(db: Any) -> tuple[Any, Any]:
    """Create ``Notification`` and ``NotificationPreference`` on ``db.Model``."""

    class Notification(db.Model):  # type: ignore[name-defined,misc]
        """One event told to one member: an in-app entry and, maybe, a queued mail."""

        __tablename__ = "rbac_notification"
        __table_args__ = (
            pk("rbac_notification", "id"),
            # The bell: count(*) of one member's unread rows, from this index alone.
            ix("rbac_notification", "membership_id", "read_at", key="unread"),
            # The worker: the due mails.
            ix("rbac_notification", "mail_state", "next_attempt_at", key="mail"),
            # Once per (member, key): the expiry scan never tells one assignment twice.
            uq("rbac_notification", "membership_id", "dedupe_key"),
            NEVER_REUSED,
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_notification.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        membership_id: Mapped[int] = mapped_column(
            fk("rbac_notification.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        category: Mapped[str] = mapped_column(sa.String(20))
        event: Mapped[str] = mapped_column(sa.String(60))
        summary: Mapped[str] = mapped_column(sa.String(500))
        link: Mapped[str] = mapped_column(sa.String(500), default="")
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
        read_at: Mapped[dt.datetime | None] = mapped_column()
        mail_state: Mapped[str] = mapped_column(sa.String(12), default="pending")
        attempts: Mapped[int] = mapped_column(default=0)
        next_attempt_at: Mapped[dt.datetime | None] = mapped_column()
        sent_at: Mapped[dt.datetime | None] = mapped_column()
        last_error: Mapped[str | None] = mapped_column(sa.Text)
        dedupe_key: Mapped[str | None] = mapped_column(sa.String(120))

        def __repr__(self) -> str:
            return f"<Notification {self.id} {self.event} m={self.membership_id}>"

    class NotificationPreference(db.Model):  # type: ignore[name-defined,misc]
        """A member's channel for one category: ``mail``, ``digest``, ``app`` or ``off``."""

        __tablename__ = "rbac_notification_preference"
        __table_args__ = (pk("rbac_notification_preference", "id"),
                          uq("rbac_notification_preference", "membership_id", "category"))
        id: Mapped[int] = mapped_column(primary_key=True)
        membership_id: Mapped[int] = mapped_column(fk(
            "rbac_notification_preference.membership_id", "rbac_membership.id", ondelete="CASCADE"))
        category: Mapped[str] = mapped_column(sa.String(20))
        channel: Mapped[str] = mapped_column(sa.String(10))

    return Notification, NotificationPreference
