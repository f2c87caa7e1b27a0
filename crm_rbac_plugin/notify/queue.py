"""Writing notifications: one row per recipient, in the transaction of the change.

:func:`enqueue` adds the rows to the session and never commits: the caller's
commit writes them with the change, and a rollback drops both, so nothing is
ever told of a change that did not happen. Each recipient's channel for the
category decides the row (:mod:`.preferences`): ``off`` writes nothing,
``app`` an entry with no mail (``skipped``), ``mail`` a mail due now
(``pending``) and ``digest`` one kept for the daily digest.

The session listeners of :func:`install` remember the ids of the pending
mails once their transaction commits (``session.info``), so that inline
delivery (``RBAC_NOTIFY_INLINE``) sends exactly those after the request.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any

from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError

from ..models import utcnow
from .preferences import CATEGORIES, channels_for, channels_in

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: ``session.info`` keys: mails flushed in the open transaction, and committed ones.
FLUSHED_KEY = "rbac_notify_flushed"
READY_KEY = "rbac_notify_ready"
#: What each channel makes of a row's mail side.
MAIL_STATE = {"mail": "pending", "digest": "digest", "app": "skipped"}


def path_for(endpoint: str, **values: Any) -> str:
    """The path of ``endpoint`` (no host: mails add theirs), or "" when the app lacks it.

    Works outside a request (the CLI, a flush in a worker) because it only
    builds a path.
    """
    try:
        return str(current_app.url_map.bind("localhost").build(endpoint, values))
    except BuildError:
        return ""


def _ids(recipients: Iterable[int]) -> set[int]:
    return {r for r in recipients if isinstance(r, int) and not isinstance(r, bool)}


def _values(channels: dict[int, str], *, workspace_id: int, category: str, event_name: str,
            summary: str, link: str, dedupe_key: str | None, mail: bool) -> list[dict[str, Any]]:
    """The column values of each recipient's row, in membership order (none for ``off``)."""
    now = utcnow()
    rows = []
    for membership_id in sorted(channels):
        channel = channels[membership_id]
        if channel == "off":
            continue
        state = MAIL_STATE[channel] if mail else "skipped"
        rows.append({
            "workspace_id": workspace_id, "membership_id": membership_id, "category": category,
            "event": event_name, "summary": summary[:500], "link": (link or "")[:500],
            "created_at": now, "read_at": None, "mail_state": state, "attempts": 0,
            "next_attempt_at": now if state == "pending" else None, "sent_at": None,
            "last_error": None, "dedupe_key": dedupe_key})
    return rows


def enqueue(session: Session, models: Any, *, workspace_id: int, recipients: Iterable[int],
            category: str, event_name: str, summary: str, link: str = "",
            dedupe_key: str | None = None, mail: bool = True) -> list[Any]:
    """Add a notification for each recipient (membership ids) as their channel says.

    ``mail=False`` writes the in-app entries only (``skipped``), for an event
    whose caller mails the recipients itself. Returns the rows added (none
    for a recipient whose channel is ``off``).
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown notification category {category!r}")
    channels = channels_for(session, models, _ids(recipients), category, workspace_id)
    rows = [models.Notification(**values) for values in _values(
        channels, workspace_id=workspace_id, category=category, event_name=event_name,
        summary=summary, link=link, dedupe_key=dedupe_key, mail=mail)]
    session.add_all(rows)
    return rows


def write_now(session: Session, models: Any, *, workspace_id: int, recipients: Iterable[int],
              category: str, event_name: str, summary: Callable[[str], str],
              link: str = "") -> int:
    """Insert the notifications of an event at once, in the session's transaction; return
    how many rows were written.

    For the session listeners, which run inside a flush: one statement reads
    the recipients' channels with the workspace's name, ``summary(name)``
    gives the text, and one ``INSERT`` writes every row (no unit of work).
    The rows commit or roll back with the change like :func:`enqueue`'s, and
    the ids of the pending mails are noted for inline delivery. Nothing is
    written when the workspace does not exist.
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown notification category {category!r}")
    name, channels = channels_in(session, models, _ids(recipients), category, workspace_id)
    if name is None:
        return 0
    rows = _values(channels, workspace_id=workspace_id, category=category,
                   event_name=event_name, summary=summary(name), link=link, dedupe_key=None,
                   mail=True)
    if not rows:
        return 0
    table = models.Notification.__table__
    pending = [r for r in rows if r["mail_state"] == "pending"]
    if pending:
        inserted = session.connection().execute(
            table.insert().returning(table.c.id, table.c.mail_state,
                                     sort_by_parameter_order=True), rows).all()
        session.info.setdefault(FLUSHED_KEY, []).extend(
            i for i, state in inserted if state == "pending")
    else:
        session.connection().execute(table.insert(), rows)
    return len(rows)


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Remember the ids of committed pending mails for inline delivery."""
    event.listen(db_session, "after_flush", lambda s, c: _note_flushed(rbac, s))
    event.listen(db_session, "after_commit", _note_committed)
    event.listen(db_session, "after_rollback", _forget_flushed)


def _note_flushed(rbac: RBACProtocol, session: Session) -> None:
    N = rbac.models.Notification
    ids = [o.id for o in session.new if isinstance(o, N) and o.mail_state == "pending"]
    if ids:
        session.info.setdefault(FLUSHED_KEY, []).extend(ids)


def _note_committed(session: Session) -> None:
    ids = session.info.pop(FLUSHED_KEY, None)
    if ids:
        session.info.setdefault(READY_KEY, []).extend(ids)


def _forget_flushed(session: Session) -> None:
    session.info.pop(FLUSHED_KEY, None)


def take_ready(session: Session) -> list[int]:
    """The ids of pending mails committed since the last call (and forget them)."""
    return list(session.info.pop(READY_KEY, None) or ())
