"""Writing notifications: one row per recipient, in the transaction of the change.

:func:`enqueue` adds the rows to the session and never commits: the caller's
commit writes them with the change, and a rollback drops both, so nothing is
ever told of a change that did not happen. :func:`write_now`, for the session
listeners that find the plugin's own events inside a flush, inserts an
event's rows in one statement of that transaction instead. Each recipient's
channel for the category decides the row (:mod:`.preferences`): ``off``
writes nothing, ``app`` an entry with no mail (``skipped``), ``mail`` a mail
due now (``pending``) and ``digest`` one kept for the daily digest.

The session listeners of :func:`install` remember the ids of the pending
mails once their transaction commits (``session.info``), so that inline
delivery (``RBAC_NOTIFY_INLINE``) sends exactly those after the request.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any
from weakref import WeakKeyDictionary

import sqlalchemy as sa
from flask import current_app
from sqlalchemy import event
from sqlalchemy.orm import Session
from werkzeug.routing import BuildError, Map

from ..config import setting
from ..loader import BYPASS
from ..models import utcnow
from .preferences import CATEGORIES, LOCKED_FOR_OWNERS, channels_for

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: ``session.info`` keys: mails flushed in the open transaction, and committed ones.
FLUSHED_KEY = "rbac_notify_flushed"
READY_KEY = "rbac_notify_ready"
#: What each channel makes of a row's mail side.
MAIL_STATE = {"mail": "pending", "digest": "digest", "app": "skipped"}


#: Paths of endpoints built without values ("" for an endpoint the app lacks), by URL
#: map: notifications are written once the app has its routes (Flask refuses new
#: ones after its first request).
_paths: WeakKeyDictionary[Map, dict[str, str]] = WeakKeyDictionary()


def path_for(endpoint: str, **values: Any) -> str:
    """The path of ``endpoint`` (no host: mails add theirs), or "" when the app lacks it.

    Works outside a request (the CLI, a flush in a worker) because it only
    builds a path.
    """
    url_map = current_app.url_map
    known = _paths.get(url_map) if not values else None
    if known is not None and endpoint in known:
        return known[endpoint]
    try:
        path = str(url_map.bind("localhost").build(endpoint, values))
    except BuildError:
        path = ""
    if not values:
        _paths.setdefault(url_map, {})[endpoint] = path
    return path


def _ids(recipients: Iterable[int]) -> set[int]:
    return {r for r in recipients if isinstance(r, int) and not isinstance(r, bool)}


def _active(session: Session, models: Any, recipients: Iterable[int]) -> set[int]:
    """The recipients that are active memberships."""
    ids = _ids(recipients)
    if not ids:
        return ids
    M = models.Membership
    with session.no_autoflush:
        return set(session.scalars(sa.select(M.id).where(M.id.in_(sorted(ids)),
                                                         M.status == "active"),
                                   execution_options=BYPASS))


def enqueue(session: Session, models: Any, *, workspace_id: int, recipients: Iterable[int],
            category: str, event_name: str, summary: str, link: str = "",
            dedupe_key: str | None = None, mail: bool = True) -> list[Any]:
    """Add a notification for each recipient (membership ids) as their channel says.

    Only active members are notified: a deactivated or pending member gets
    no row (the workspace no longer speaks to them; delivery checks again
    when the mail is due). ``mail=False`` writes the in-app entries only (``skipped``), for an event
    whose caller mails the recipients itself. Returns the rows added (none
    for a recipient whose channel is ``off``).
    """
    if category not in CATEGORIES:
        raise ValueError(f"unknown notification category {category!r}")
    channels = channels_for(session, models, _active(session, models, recipients), category,
                            workspace_id)
    now = utcnow()
    rows = []
    for membership_id in sorted(channels):
        channel = channels[membership_id]
        if channel == "off":
            continue
        state = MAIL_STATE[channel] if mail else "skipped"
        row = models.Notification(
            workspace_id=workspace_id, membership_id=membership_id, category=category,
            event=event_name, summary=summary[:500], link=(link or "")[:500], created_at=now,
            mail_state=state, attempts=0,
            next_attempt_at=now if state == "pending" else None, dedupe_key=dedupe_key)
        session.add(row)
        rows.append(row)
    return rows


#: The channel of a recipient in SQL: their stored choice, else their ``notify_email``.
_CHANNEL = "COALESCE(p.channel, CASE WHEN m.notify_email THEN 'mail' ELSE 'app' END)"
#: What the channel makes of the row's mail side (:data:`MAIL_STATE`).
_STATE = (f"CASE {_CHANNEL} WHEN 'mail' THEN 'pending' WHEN 'digest' THEN 'digest' "
          "ELSE 'skipped' END")
#: One row per recipient of the workspace whose channel is not ``off``, its summary
#: around the workspace's name, in one statement.
_INSERT_SQL = (
    "INSERT INTO {n} (workspace_id, membership_id, category, event, summary, link, "
    "created_at, mail_state, attempts, next_attempt_at) "
    "SELECT w.id, m.id, :category, :event, substr(:before || w.name || :after, 1, 500), "
    f":link, :now, {_STATE}, 0, CASE WHEN {_STATE} = 'pending' THEN :now END "
    "FROM {w} w JOIN {m} m ON m.workspace_id = w.id AND m.id {ids} "
    "LEFT OUTER JOIN {p} p ON p.membership_id = m.id AND p.category = :category "
    f"WHERE w.id = :workspace_id AND {_CHANNEL} <> 'off' ORDER BY m.id{{returning}}")
#: What inline delivery reads of the rows written: their ids and mail states.
_RETURNING = " RETURNING id, mail_state"
_inserts: dict[tuple[Any, ...], sa.TextClause] = {}


def _insert_statement(models: Any, one: bool, returning: bool = True) -> sa.TextClause:
    """The insert for one recipient (``m.id = :ids``: most events tell one member, and a
    list parameter is expanded into the SQL again at every execution) or several;
    ``returning``: with the rows' ids and mail states."""
    key = (models.Notification.__table__, models.Workspace.__table__,
           models.Membership.__table__, models.NotificationPreference.__table__, one, returning)
    stmt = _inserts.get(key)
    if stmt is None:
        n, w, m, p = (t.name for t in key[:4])
        sql = _INSERT_SQL.format(n=n, w=w, m=m, p=p,
                                 ids="= :ids" if one else "IN :ids",
                                 returning=_RETURNING if returning else "")
        stmt = sa.text(sql).bindparams(sa.bindparam("now", type_=sa.DateTime()))
        if not one:
            stmt = stmt.bindparams(sa.bindparam("ids", expanding=True))
        _inserts[key] = stmt
    return stmt


def write_now(session: Session, models: Any, *, workspace_id: int, recipients: Iterable[int],
              category: str, event_name: str, summary: tuple[str, str],
              link: str = "") -> int:
    """Insert the notifications of an event in one statement, in the session's
    transaction; return how many rows were written.

    For the session listeners, which run inside a flush: one ``INSERT ...
    SELECT`` reads each recipient's channel as :func:`.preferences.channels_for`
    does and writes their row as :func:`enqueue` does (``off``: none), with
    the summary ``summary[0] + workspace name + summary[1]``. The rows commit
    or roll back with the change, and the ids of the pending mails are noted
    for inline delivery (``RBAC_NOTIFY_INLINE``: without it nothing reads them, and
    the statement returns no rows). Not for the security category, whose Owners'
    ``off`` counts as ``mail`` (:func:`enqueue` applies it).
    """
    if category not in CATEGORIES or category == LOCKED_FOR_OWNERS:
        raise ValueError(f"write_now does not write the category {category!r}")
    ids = sorted(_ids(recipients))
    if not ids:
        return 0
    # On the session's connection: a plain statement, past the ORM's execute events.
    one = len(ids) == 1
    inline = bool(setting("RBAC_NOTIFY_INLINE"))
    result = session.connection().execute(_insert_statement(models, one, inline), {
        "ids": ids[0] if one else ids, "category": category, "event": event_name, "before": summary[0],
        "after": summary[1], "link": (link or "")[:500], "now": utcnow(),
        "workspace_id": workspace_id})
    if not inline:
        return int(result.rowcount)
    inserted = result.all()
    pending = [i for i, state in inserted if state == "pending"]
    if pending:
        session.info.setdefault(FLUSHED_KEY, []).extend(pending)
    return len(inserted)


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
