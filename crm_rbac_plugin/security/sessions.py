"""Server-side sessions: one ``rbac_session`` row per sign-in, checked on every request.

A signed cookie stays valid until it expires, wherever it is copied; the
server can end it only by keeping something the cookie names. So each
sign-in draws a random session id, keeps it in the Flask session
(``RBAC_SESSION_ID_KEY``) and stores only its SHA-256 in a row with the IP,
the user agent and the times. The invariants:

* **A new id at sign-in.** Flask-Login's ``user_logged_in`` (and
  ``user_loaded_from_cookie``: a restoration is a new sign-in) draws a new id and
  drops every key the session carried in, but Flask-Login's (:func:`start`). Whatever an attacker
  planted in a pre-login session, the signed-in session is not it. The MFA
  check is bound to the id (:mod:`.stepup`), so a new id needs a new code.
* **Revoked means dead on the next request.** The gate of
  :mod:`.enforce` reads the row in the query that
  :func:`.stepup.mfa_state` runs anyway (:func:`lookup_columns`): an
  unknown id, a revoked row, a row idle longer than the workspace's idle
  timeout or older than its absolute lifetime signs the user out
  (:func:`verdict`). A copied cookie whose id was revoked is never adopted
  again: only a session *without* an id is adopted.
* **Adoption.** A session without an id (Flask-Login's test client) gets a row.
* **Cheap, and never early.** ``last_seen_at`` is written only when it is
  :func:`touch_slack` old (``RBAC_SESSION_TOUCH_SECONDS``, at most a tenth
  of the idle timeout); most requests write nothing. The stored time thus
  trails the last request by less than the slack, and the idle verdict
  grants that slack on top of the timeout, so a session ends only after the
  full idle timeout without any request (and at most the slack later).
* **Audited.** Every revocation writes ``session.revoked`` in each workspace of
  the account and sends :data:`..signals.session_revoked`.

API tokens have no session. Times come from :attr:`SessionService.clock` (naive UTC).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, current_app, has_request_context, request, session

from .. import audit, signals
from ..config import request_settings, setting
from ..loader import BYPASS
from ..models import naive_utc, utcnow
from ..policy import ALLOW, Access
from ..proxies import current_flask_app, get_rbac
from .policy import Policy

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["ADMIN_RESOURCES", "REASONS", "SessionRecord", "SessionService", "account_lifetimes",
           "apply_cap_here", "current_sid", "is_live", "is_privileged",
           "list_sessions", "lookup_columns", "retire", "revoke", "revoke_all", "service", "start",
           "verdict"]

#: Why a session ended (the ``reason`` of ``session.revoked``).
REASONS = ("signed_out", "sign_out_everywhere", "admin", "idle", "expired", "cap",
           "password_changed", "mfa_failed")
#: Flask-Login's own session keys: kept when a sign-in clears the session.
FLASK_LOGIN_KEYS = frozenset({"_user_id", "_fresh", "_id", "_remember", "_remember_seconds"})
USER_AGENT_MAX = 300
EXTENSION_KEY = "rbac.sessions"


class SessionService:
    """Per-app state of the sessions: the clock (naive UTC now); tests replace it."""

    def __init__(self, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self.clock = clock


def init_app(app: Flask) -> None:
    """Give ``app`` its :class:`SessionService`."""
    app.extensions.setdefault(EXTENSION_KEY, SessionService())


def service(app: Flask | None = None) -> SessionService:
    """The :class:`SessionService` of ``app`` (default: the current app)."""
    return (app or current_flask_app()).extensions[EXTENSION_KEY]  # type: ignore[no-any-return]


def now() -> dt.datetime:
    return naive_utc(service().clock())


def sid_hash(sid: str) -> str:
    """The stored form of a session id: its SHA-256, hex."""
    return hashlib.sha256(sid.encode()).hexdigest()


def current_sid() -> str | None:
    """The session id in this request's Flask session, or None."""
    value = session.get(setting("RBAC_SESSION_ID_KEY"))
    return value if isinstance(value, str) and value else None


# -- the per-request lookup -----------------------------------------------------------------


@dataclass(frozen=True)
class SessionRecord:
    """What the request's cookie names: ``has_id`` (an id is in the session) and the row's
    ``id``, ``created_at``, ``last_seen_at``, ``revoked_at`` (``id`` None: no such row)."""

    has_id: bool
    id: int | None
    created_at: dt.datetime | None
    last_seen_at: dt.datetime | None
    revoked_at: dt.datetime | None


@dataclass(frozen=True)
class Lifetimes:
    """The idle timeout and the absolute lifetime a session gets, in minutes."""

    idle_minutes: int
    absolute_minutes: int


def lookup_columns(rbac: RBACProtocol, user_id: Any) -> list[Any]:
    """Scalar subqueries of the request's session row (id, created, last seen, revoked),
    for :func:`.stepup.mfa_state` to add to its one query; a row of another user is no row."""
    S = rbac.models.AuthSession
    sid = current_sid()
    digest = sid_hash(sid) if sid is not None else ""
    where = (S.sid_hash == digest, S.user_id == user_id)
    return [sa.select(column).where(*where).scalar_subquery()
            for column in (S.id, S.created_at, S.last_seen_at, S.revoked_at)]


def record_from(values: Iterable[Any]) -> SessionRecord:
    """The :class:`SessionRecord` of the four values :func:`lookup_columns` selected."""
    row_id, created, seen, revoked = values
    return SessionRecord(has_id=current_sid() is not None, id=row_id, created_at=created,
                         last_seen_at=seen, revoked_at=revoked)


def touch_slack(lifetimes: Lifetimes, touch: dt.timedelta) -> dt.timedelta:
    """How far ``last_seen_at`` may trail the last request: ``touch``
    (``RBAC_SESSION_TOUCH_SECONDS``), at most a tenth of the idle timeout.

    The cap keeps a short timeout short: with one minute idle a session
    ends within 66 seconds of its last request, for one write per 6 seconds
    of activity; a long timeout keeps the configured write rate.
    """
    return min(touch, dt.timedelta(minutes=lifetimes.idle_minutes) / 10)


def verdict(record: SessionRecord, lifetimes: Lifetimes, at: dt.datetime,
            touch: dt.timedelta = dt.timedelta(0)) -> str | None:
    """Why the session must end at ``at``, or None while it lives.

    ``"revoked"`` (revoked, or an id no row of this user has), ``"idle"``
    (no request for longer than the idle timeout), ``"expired"`` (older than
    the absolute lifetime). Exactly at a limit the session still lives.
    ``touch`` is the interval :func:`touch` writes ``last_seen_at`` at: the
    stored time may trail the last request by up to :func:`touch_slack`, so
    the idle limit counts that much more from it.
    """
    if (record.id is None or record.revoked_at is not None or record.created_at is None
            or record.last_seen_at is None):
        return "revoked"
    if at - record.created_at > dt.timedelta(minutes=lifetimes.absolute_minutes):
        return "expired"
    idle = dt.timedelta(minutes=lifetimes.idle_minutes) + touch_slack(lifetimes, touch)
    if at - record.last_seen_at > idle:
        return "idle"
    return None


def touch(rbac: RBACProtocol, record: SessionRecord, lifetimes: Lifetimes,
          at: dt.datetime) -> bool:
    """Write ``last_seen_at`` when it is :func:`touch_slack` old (the idle verdict
    allows for that lag, so skipping the write never shortens the session)."""
    if record.id is None or record.last_seen_at is None:
        return False
    if at - record.last_seen_at < touch_slack(lifetimes, request_settings().session_touch):
        return False
    S = rbac.models.AuthSession
    rbac.db.session.execute(sa.update(S).where(S.id == record.id).values(last_seen_at=at),
                            execution_options={**BYPASS, "synchronize_session": False})
    rbac.db.session.commit()
    return True


# -- sign-in and sign-out ----------------------------------------------------------------------


def _clear_carried() -> None:
    """Drop the keys the request's session cookie carried in, except Flask-Login's.

    The carried keys are read from the cookie itself, so a key another
    receiver of the same sign-in signal wrote in this request (the host's
    "first visit" flag) stays, whichever receiver runs first.
    """
    app = current_app._get_current_object()  # type: ignore[attr-defined]
    carried = app.session_interface.open_session(app, request)
    for key in [k for k in (carried if carried is not None else session)
                if k not in FLASK_LOGIN_KEYS]:
        session.pop(key, None)


def start(rbac: RBACProtocol, user: Any, *, clear: bool = True, cap: bool = True) -> Any:
    """Open a session for ``user``: a new id in the Flask session, a new row; commit.

    ``clear`` drops the keys the session carried in (see :func:`_clear_carried`),
    unless the same user signs in again over a live session of theirs (a password
    change renews the id, keeps the visit's state and its absolute start). The id the
    session had before is revoked silently: it is this browser's, replaced.
    A live session of another account that the browser held (an invitation
    accepted where a colleague was signed in) is signed out (``signed_out``):
    the browser is someone else's now, and no copy of its cookie lives on.
    Beyond the workspaces' cap (``max_sessions``), the oldest live sessions
    of the account are revoked with reason ``"cap"`` when ``cap``; a sign-in
    that owes its MFA code passes False and gets the cap once the code passes
    (:func:`apply_cap_here`): the password alone never ends a verified session.
    """
    S = rbac.models.AuthSession
    uid = rbac.user_pk(user)
    key = setting("RBAC_SESSION_ID_KEY")
    old = current_sid()
    replaced = _live_row(rbac, old, uid) if old is not None else None
    if clear and replaced is None:
        _clear_carried()
    if replaced is not None:
        replaced.revoked_at = now()
    elif old is not None:
        _end_other_account(rbac, old, uid)
    sid = secrets.token_urlsafe(32)
    session[key] = sid
    at = now()
    agent = request.user_agent.string[:USER_AGENT_MAX] if has_request_context() else ""
    row = S(user_id=uid, sid_hash=sid_hash(sid), created_at=replaced.created_at if replaced else at,
            last_seen_at=at, ip=(request.remote_addr or "")[:64] if has_request_context() else "",
            user_agent=agent)
    rbac.db.session.add(row)
    rbac.db.session.flush()
    if cap:
        _apply_cap(rbac, uid, row.id)
    rbac.db.session.commit()
    return row


def _end_other_account(rbac: RBACProtocol, sid: str, user_id: Any) -> None:
    """Sign out the live session ``sid`` names when it is another account's than ``user_id``."""
    S = rbac.models.AuthSession
    row = rbac.db.session.execute(sa.select(S.id, S.user_id).where(
        S.sid_hash == sid_hash(sid), S.user_id != user_id, S.revoked_at.is_(None))).first()
    if row is not None:
        _revoke_ids(rbac, row.user_id, [row.id], by=None, reason="signed_out")


def apply_cap_here(rbac: RBACProtocol, user_id: Any) -> None:
    """Apply the cap for the request's own session, which just passed its MFA code."""
    row = _live_row(rbac, current_sid() or "", user_id)
    if row is not None:
        _apply_cap(rbac, user_id, row.id)


def is_live_here(rbac: RBACProtocol, user_id: Any) -> bool:
    """Whether the request's session id names a live (unrevoked) session of ``user_id``."""
    sid = current_sid()
    return sid is not None and _live_row(rbac, sid, user_id) is not None


def _live_row(rbac: RBACProtocol, sid: str, user_id: Any) -> Any:
    S = rbac.models.AuthSession
    return rbac.db.session.scalar(sa.select(S).where(
        S.sid_hash == sid_hash(sid), S.user_id == user_id, S.revoked_at.is_(None)))


def is_live(rbac: RBACProtocol, sid: str, user_id: Any) -> bool:
    """Whether ``sid`` names a session of ``user_id`` that still lives: not revoked, and
    neither idle nor older than :func:`account_lifetimes` allow.

    A host that binds its remember-me cookie to the session that issued it
    asks this before the cookie restores a new session: a session ended from
    the profile's list, by the cap, idle or expired restores nothing. A
    session idle past its timeout is marked so only when its own browser
    comes back; a browser closed meanwhile leaves the row unrevoked, so the
    times are judged here too, or closing the browser would beat the
    workspace's idle timeout.
    """
    row = _live_row(rbac, sid, user_id)
    return row is not None and bool(_still_live(rbac, user_id, [row]))


def _still_live(rbac: RBACProtocol, user_id: Any, rows: list[Any]) -> list[Any]:
    """The unrevoked ``rows`` of ``user_id`` that :func:`verdict` lets live now."""
    lifetimes = account_lifetimes(rbac, user_id) if rows else None
    if lifetimes is None:
        return rows  # no active membership: the host's user loader decides
    at, slack = now(), request_settings().session_touch
    return [r for r in rows if verdict(SessionRecord(True, r.id, r.created_at, r.last_seen_at,
                                                     r.revoked_at), lifetimes, at, slack) is None]


#: The resources whose ``manage`` makes a member privileged.
ADMIN_RESOURCES = ("members", "roles", "settings")


def is_privileged(access: Access | None) -> bool:
    """Whether ``access`` is an Owner's or holds ``manage`` on members, roles or settings:
    it gets the privileged session lifetimes (and, by policy, must use MFA)."""
    if access is None:
        return False
    if access.is_owner:
        return True
    return any(rule.effect == ALLOW for resource in ADMIN_RESOURCES
               for rule in access.rules.get((resource, "manage"), ()))


def account_lifetimes(rbac: RBACProtocol, user_id: Any,
                      workspace_id: Any = None) -> Lifetimes | None:
    """The strictest idle timeout and absolute lifetime over the account's active
    memberships (each workspace's privileged values where the member is privileged there),
    or None without one: a restored session may enter any of those workspaces. With
    ``workspace_id``, that workspace's alone: the one a session switches into."""
    M, P = rbac.models.Membership, rbac.models.SecurityPolicy
    only = () if workspace_id is None else (M.workspace_id == workspace_id,)
    rows = rbac.db.session.execute(
        sa.select(M.id, P.idle_minutes_privileged, P.absolute_minutes_privileged,
                  P.idle_minutes_member, P.absolute_minutes_member)
        .outerjoin(P, P.workspace_id == M.workspace_id)
        .where(M.user_id == user_id, M.status == "active", *only),
        execution_options=BYPASS).all()
    found = [(idle_p or Policy.idle_minutes_privileged, abs_p or Policy.absolute_minutes_privileged)
             if is_privileged(rbac.access_for(mid))
             else (idle_m or Policy.idle_minutes_member, abs_m or Policy.absolute_minutes_member)
             for mid, idle_p, abs_p, idle_m, abs_m in rows]
    if not found:
        return None
    return Lifetimes(min(int(i) for i, _ in found), min(int(a) for _, a in found))


def retire(rbac: RBACProtocol, sid: str, user_id: Any) -> None:
    """Revoke the live session ``sid`` of ``user_id`` without an event: the browser's
    earlier session, replaced by the one its remember-me cookie restored (as :func:`start`
    revokes the id it replaces). The restored session keeps the earlier one's start, so a
    cookie never renews the absolute lifetime. The caller commits."""
    row, here = _live_row(rbac, sid, user_id), current_sid()
    current = _live_row(rbac, here, user_id) if row is not None and here else None
    if row is not None:
        row.revoked_at = now()
    if current is not None and row.created_at < current.created_at:
        current.created_at = row.created_at


def session_cap(rbac: RBACProtocol, user_id: Any) -> int | None:
    """The smallest ``max_sessions`` of the workspaces where the account is an active
    member (None: no cap); a pending invitation imposes nothing on the account."""
    M, P = rbac.models.Membership, rbac.models.SecurityPolicy
    return rbac.db.session.scalar(  # type: ignore[no-any-return]
        sa.select(sa.func.min(P.max_sessions)).join(M, M.workspace_id == P.workspace_id)
        .where(M.user_id == user_id, M.status == "active"))


def _apply_cap(rbac: RBACProtocol, user_id: Any, new_id: int) -> None:
    cap = session_cap(rbac, user_id)
    if cap is None:
        return
    live = [row.id for row in sorted(_live_rows(rbac, user_id),
                                     key=lambda r: (r.created_at, r.id), reverse=True)
            if row.id != new_id]
    excess = live[max(cap - 1, 0):]
    if excess:
        _revoke_ids(rbac, user_id, excess, by=None, reason="cap")


def end_current(rbac: RBACProtocol, reason: str) -> None:
    """Revoke the request's own session row (if live) with ``reason``; audited."""
    sid = current_sid()
    if sid is None:
        return
    S = rbac.models.AuthSession
    row = rbac.db.session.execute(sa.select(S.id, S.user_id).where(
        S.sid_hash == sid_hash(sid), S.revoked_at.is_(None))).first()
    if row is not None:
        _revoke_ids(rbac, row.user_id, [row.id], by=None, reason=reason)
        rbac.db.session.commit()


# -- the service -------------------------------------------------------------------------------


@dataclass(frozen=True)
class SessionView:
    """One live session as the profile lists it."""

    id: int
    created_at: dt.datetime
    last_seen_at: dt.datetime
    ip: str
    user_agent: str
    current: bool


def _live_rows(rbac: RBACProtocol, user_id: Any) -> list[Any]:
    """The account's live sessions, most recently seen first: unrevoked, and by
    :func:`verdict` neither idle nor expired (a dead row is marked revoked only when
    its browser comes back; the list, the count and the cap must not see it)."""
    S = rbac.models.AuthSession
    return _still_live(rbac, user_id, list(rbac.db.session.scalars(sa.select(S).where(
        S.user_id == user_id, S.revoked_at.is_(None))
        .order_by(S.last_seen_at.desc(), S.id.desc()))))


def list_sessions(rbac: RBACProtocol, user_id: Any) -> list[SessionView]:
    """The account's live sessions, most recently seen first (``current``: this browser's)."""
    sid = current_sid() if has_request_context() else None
    mine = sid_hash(sid) if sid is not None else None
    return [SessionView(id=r.id, created_at=r.created_at, last_seen_at=r.last_seen_at,
                        ip=r.ip, user_agent=r.user_agent, current=r.sid_hash == mine)
            for r in _live_rows(rbac, user_id)]


def live_count(rbac: RBACProtocol, user_id: Any) -> int:
    """How many live sessions the account has (idle and expired ones are not)."""
    return len(_live_rows(rbac, user_id))


def revoke(rbac: RBACProtocol, session_id: int, *, by: Any, reason: str) -> bool:
    """Revoke the live session ``session_id``; False when it is not live. The caller commits.

    The caller checks that ``by`` may (its own session, or an admin's right).
    """
    S = rbac.models.AuthSession
    user_id = rbac.db.session.scalar(sa.select(S.user_id).where(
        S.id == session_id, S.revoked_at.is_(None)))
    if user_id is None:
        return False
    return _revoke_ids(rbac, user_id, [session_id], by=by, reason=reason) == 1


def revoke_all(rbac: RBACProtocol, user_id: Any, *, except_current: bool, by: Any,
               reason: str) -> int:
    """Revoke every live session of ``user_id`` (but this browser's when ``except_current``);
    return how many. The caller commits."""
    S = rbac.models.AuthSession
    stmt = sa.select(S.id).where(S.user_id == user_id, S.revoked_at.is_(None))
    sid = current_sid() if has_request_context() else None
    if except_current and sid is not None:
        stmt = stmt.where(S.sid_hash != sid_hash(sid))
    ids = list(rbac.db.session.scalars(stmt.order_by(S.id)))
    return _revoke_ids(rbac, user_id, ids, by=by, reason=reason) if ids else 0


def _revoke_ids(rbac: RBACProtocol, user_id: Any, ids: list[int], *, by: Any,
                reason: str) -> int:
    """Mark ``ids`` revoked (those still live), audit and signal; return how many."""
    if reason not in REASONS:
        raise ValueError(f"unknown reason {reason!r}")
    S = rbac.models.AuthSession
    result = rbac.db.session.execute(
        sa.update(S).where(S.id.in_(ids), S.revoked_at.is_(None)).values(revoked_at=now()),
        execution_options={**BYPASS, "synchronize_session": False})
    count = int(result.rowcount or 0)
    if count:
        _audit(rbac, user_id, min(ids), count, by=by, reason=reason)
        app = current_app._get_current_object()  # type: ignore[attr-defined]
        signals.session_revoked.send(app, user_id=user_id, session_ids=ids, reason=reason,
                                     by=by, count=count)
    return count


def _audit(rbac: RBACProtocol, user_id: Any, session_id: int, count: int, *, by: Any,
           reason: str) -> None:
    """``session.revoked`` in each workspace of the account, attributed to ``by``
    (an :class:`~..policy.Access`) or, when None, to the account itself.

    One event per revocation: ``session_id`` is the revoked session's id (of
    several, the lowest) and ``count`` how many ended together.
    """
    M, U = rbac.models.Membership, rbac.user_model
    pairs = rbac.db.session.execute(sa.select(M.workspace_id, M.id).where(
        M.user_id == user_id, M.status != "pending").order_by(M.workspace_id)).all()
    user = rbac.db.session.get(U, user_id)
    target = str(getattr(user, "email", "") or user_id).strip().lower()
    for workspace_id, membership_id in pairs:
        if by is None:
            actor = (user_id, membership_id)
        else:
            actor = (by.user_id, by.membership_id if by.workspace_id == workspace_id else None)
        audit.record(rbac, "session.revoked", workspace_id=workspace_id, resource="account",
                     target=target, actor_ids=actor, session_id=session_id, reason=reason,
                     count=count)


def rbac_or_none() -> RBACProtocol | None:
    """The current app's extension, or None (an app without it, or no app)."""
    try:
        return get_rbac() if EXTENSION_KEY in current_app.extensions else None
    except RuntimeError:
        return None
