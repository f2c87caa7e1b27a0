"""Sending the queued mails: one per notification, the daily digests, and retries.

The worker (``flask rbac notify send``) and inline delivery
(``RBAC_NOTIFY_INLINE``, after the request that queued them) both call
:func:`send_due`. A mail that fails is not lost and fails nothing else: its
row keeps ``pending`` with ``attempts`` + 1, ``last_error`` and a
``next_attempt_at`` that doubles from ``RBAC_NOTIFY_RETRY_SECONDS``; after
``RBAC_NOTIFY_MAX_ATTEMPTS`` it is marked ``failed``. On PostgreSQL the due
rows are locked with ``SKIP LOCKED``, so two workers never send one mail
twice.

Mails are rendered from ``rbac/mail/notification.txt``/``.html`` and
``rbac/mail/notification_digest.txt``/``.html`` (a host overrides them as
any template) and link to the page where one acts, as an absolute URL
(on :func:`..urls.external_base`, never the request's ``Host``), and to the
notifications page.

Only active members are mailed: a row of a member who is no longer active
(deactivated, or pending) when it is due is not sent (``mail_state``
``skipped``, in-app only), since the workspace no longer speaks to them.
The one exception is the notice of their own deactivation
(:data:`MAILED_WHEN_INACTIVE`), which tells them why their access ended.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from ..config import setting
from ..loader import BYPASS
from ..locking import write_lock
from ..models import utcnow
from ..team.mail import send_mail
from ..urls import absolute_url
from .queue import path_for, take_ready

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass
class Counts:
    """What one run did."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    errors: list[str] = field(default_factory=list)


def absolute(path: str) -> str:
    """``path`` as an absolute URL on the site's address (:func:`..urls.external_base`),
    never on the request's ``Host`` header."""
    return absolute_url(path)


def _due(rbac: RBACProtocol, state: str, now: dt.datetime, ids: Iterable[int] | None,
         limit: int) -> list[Any]:
    """The rows in ``state`` that are due, held by this transaction until it commits.

    PostgreSQL locks them and skips rows another worker holds. SQLite has no
    row locks: the send takes its write lock before reading, so a second
    worker waits there and then finds the rows already sent.
    """
    N = rbac.models.Notification
    where = [N.mail_state == state]
    if state == "pending":
        where.append(sa.or_(N.next_attempt_at.is_(None), N.next_attempt_at <= now))
    if ids is not None:
        where.append(N.id.in_(list(ids)))
    query = sa.select(N).where(*where).order_by(N.id).limit(limit)
    session = rbac.db.session
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True, of=N)
    else:
        write_lock(session, N, *where)
        query = query.execution_options(populate_existing=True)
    return list(session.scalars(query, execution_options=BYPASS))


#: The events mailed to a member who is no longer active.
MAILED_WHEN_INACTIVE = frozenset({"membership.deactivated"})


def _silenced(membership: Any, row: Any) -> bool:
    """Whether ``row`` is not mailed: its member is gone or no longer active."""
    if membership is None:
        return True
    return membership.status != "active" and row.event not in MAILED_WHEN_INACTIVE


def _skip(row: Any) -> None:
    row.mail_state, row.next_attempt_at = "skipped", None


def _recipient(rbac: RBACProtocol, membership_id: int) -> tuple[Any, str | None]:
    membership = rbac.db.session.get(rbac.models.Membership, membership_id,
                                     execution_options=BYPASS)
    address = getattr(membership.user, "email", None) if membership is not None else None
    return membership, address


def _failed(row: Any, exc: Exception, now: dt.datetime, counts: Counts) -> None:
    """Count a failed attempt: retry later with a doubled delay, or give up."""
    row.attempts = (row.attempts or 0) + 1
    row.last_error = f"{type(exc).__name__}: {exc}"[:1000]
    if row.attempts >= int(setting("RBAC_NOTIFY_MAX_ATTEMPTS")):
        row.mail_state = "failed"
        row.next_attempt_at = None
        counts.failed += 1
    else:
        delay = int(setting("RBAC_NOTIFY_RETRY_SECONDS")) * 2 ** (row.attempts - 1)
        row.next_attempt_at = now + dt.timedelta(seconds=delay)
        counts.retried += 1
    counts.errors.append(f"notification {row.id}: {row.last_error}")


def send_due(rbac: RBACProtocol, *, ids: Iterable[int] | None = None,
             now: dt.datetime | None = None) -> Counts:
    """Send every due mail (only ``ids`` when given), then commit."""
    now = now or utcnow()
    counts = Counts()
    for row in _due(rbac, "pending", now, ids, int(setting("RBAC_NOTIFY_BATCH"))):
        membership, address = _recipient(rbac, row.membership_id)
        if _silenced(membership, row):
            _skip(row)
            continue
        try:
            if not address:
                raise LookupError("the member has no email address")
            send_mail(row.summary, address, "notification", notification=row,
                      membership=membership, workspace=membership.workspace,
                      link=absolute(row.link or path_for("rbac_settings.notifications")),
                      inbox=absolute(path_for("rbac_settings.notifications")))
        except Exception as exc:  # noqa: BLE001 - any mail failure is retried, never raised
            _failed(row, exc, now, counts)
            continue
        row.mail_state, row.sent_at, row.last_error = "sent", now, None
        row.attempts = (row.attempts or 0) + 1
        counts.sent += 1
    rbac.db.session.commit()
    return counts


#: A member gets at most one digest within this time, however often the worker runs.
DIGEST_EVERY = dt.timedelta(hours=20)


def _digested_recently(rbac: RBACProtocol, membership_ids: Iterable[int],
                       now: dt.datetime) -> set[int]:
    N = rbac.models.Notification
    return set(rbac.db.session.scalars(
        sa.select(N.membership_id).distinct()
        .where(N.membership_id.in_(list(membership_ids)), N.mail_state == "digested",
               N.sent_at > now - DIGEST_EVERY), execution_options=BYPASS))


def send_digests(rbac: RBACProtocol, *, now: dt.datetime | None = None) -> Counts:
    """Send each member one mail listing their ``digest`` notifications, then commit.

    Run once a day (cron); a member who got a digest within
    :data:`DIGEST_EVERY` is skipped, so running it more often sends no more
    than one a day. A failed digest stays for the next run.
    """
    now = now or utcnow()
    counts = Counts()
    by_member: dict[int, list[Any]] = {}
    for row in _due(rbac, "digest", now, None, int(setting("RBAC_NOTIFY_BATCH")) * 20):
        by_member.setdefault(row.membership_id, []).append(row)
    for membership_id in _digested_recently(rbac, by_member, now):
        del by_member[membership_id]
    for membership_id, rows in by_member.items():
        membership, address = _recipient(rbac, membership_id)
        for row in [r for r in rows if _silenced(membership, r)]:
            _skip(row)
            rows.remove(row)
        if not rows:
            continue
        try:
            if not address:
                raise LookupError("the member has no email address")
            send_mail(f"{len(rows)} notification(s) from {membership.workspace}", address,
                      "notification_digest", notifications=rows, membership=membership,
                      workspace=membership.workspace,
                      links=[absolute(r.link or path_for("rbac_settings.notifications"))
                             for r in rows],
                      inbox=absolute(path_for("rbac_settings.notifications")))
        except Exception as exc:  # noqa: BLE001 - a failed digest waits for the next run
            for row in rows:
                _failed(row, exc, now, counts)
                if row.mail_state != "failed":
                    row.mail_state = "digest"
            continue
        for row in rows:
            row.mail_state, row.sent_at, row.last_error = "digested", now, None
        counts.sent += 1
    rbac.db.session.commit()
    return counts


def deliver_inline(rbac: RBACProtocol, response: Any) -> Any:
    """``after_request``: send the mails this request committed, never failing it.

    Only with ``RBAC_NOTIFY_INLINE``; skipped while the request left changes
    uncommitted (delivery commits, and must not commit those): the worker
    sends them later. Any error is logged and rolled back; the response is
    returned unchanged.
    """
    session = rbac.db.session
    ids = take_ready(session)
    if not ids or not setting("RBAC_NOTIFY_INLINE"):
        return response
    if session.new or session.deleted or any(session.is_modified(o) for o in session.dirty):
        return response
    try:
        send_due(rbac, ids=ids)
    except Exception:  # noqa: BLE001 - the request succeeded; the worker retries
        current_app.logger.exception("crm_rbac_plugin: inline notification delivery failed")
        session.rollback()
    return response
