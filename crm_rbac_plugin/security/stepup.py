"""Who must use MFA, when the session last passed a check, and step-up for sensitive actions.

* **Privileged members** (:func:`is_privileged`) are Owners and every member
  holding ``manage`` on one of the administrative resources ``members``,
  ``roles`` or ``settings`` (the built-in Admin role holds all three). Any
  allow counts, whatever its scope or condition: when in doubt a member is
  privileged, since the rule only ever adds a check.
* **The workspace's policy** (``SecurityPolicy.mfa``, read by
  :func:`mfa_state`) says who must enrol: ``nobody``, ``privileged``
  members, or ``everyone``. It applies to the member's *real* access,
  never to the access of a member an Owner is viewing the app as.
* **The session's check**: when a password sign-in is followed by a valid
  code, :func:`record_check` writes the time into the Flask session, bound
  to the user's key and to the SHA-256 of the server-side session's id
  (:mod:`.sessions`). A check counts only in the server session that passed
  it (:func:`session_check`): a copy of the cookie outlives its session,
  and a sign-in through it draws a new id, so the copied check names a dead
  one. Every Flask-Login sign-out forgets it (:func:`forget_check`) and
  every sign-in drops it (:func:`..enforce.session_started`), so a new
  sign-in always needs a new code (a remember-me cookie restores the user,
  not the check). The one exception is the same user signing in again over
  this browser's live session, as the profile does after a password change:
  that session passed the check, so the check moves to its new id. A host
  that does its own MFA registers ``@rbac.mfa_verified``, a function
  ``(user) -> datetime | None`` giving the time of its own last check; a
  time from it counts as enrolled and checked.
* **Step-up** (:func:`require_recent_mfa`): view-as, role changes and
  other sensitive routes need a check within the workspace's
  ``step_up_minutes`` (``RBAC_MFA_STEP_UP_MINUTES`` for a workspace without
  a policy row). It applies to members who are enrolled or must be; a stale
  browser session is sent to the verification page and comes back, a JSON
  client gets ``403 {"error": "mfa_step_up_required"}``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from typing import Any, TypeVar
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import current_app, jsonify, redirect, request, session, url_for
from werkzeug.routing import BuildError

from ..decorators import EXEMPT_METHODS, wants_json
from ..identity import Visit, request_state, signed_in_user, visit
from ..interface import RBACProtocol
from ..loader import BYPASS
from ..models import naive_utc, utcnow
from ..policy import Access
from ..proxies import current_session, get_rbac
from ..urls import safe_next
from . import sessions
from .policy import Policy
from .sessions import is_privileged

F = TypeVar("F", bound=Callable[..., Any])

#: The policy values of ``SecurityPolicy.mfa``.
POLICIES = ("nobody", "privileged", "everyone")
#: Flask session key of the session's last MFA check: ``{"user": key, "at": epoch seconds}``.
SESSION_KEY = "rbac_mfa"
#: The plugin's pages a member reaches before enrolling or verifying (settings blueprint).
ENROL_ENDPOINT = "rbac_settings.mfa"
VERIFY_ENDPOINT = "rbac_settings.mfa_verify"


def must_enrol(policy: str, access: Access | None) -> bool:
    """Whether a workspace policy (``nobody``/``privileged``/``everyone``) requires MFA of ``access``."""
    if access is None or policy == "nobody":
        return False
    if policy == "everyone":
        return True
    return is_privileged(access)


def is_recent(checked_at: dt.datetime | None, minutes: int, now: dt.datetime) -> bool:
    """Whether a check at ``checked_at`` is within the last ``minutes`` of ``now``."""
    return checked_at is not None and now - checked_at <= dt.timedelta(minutes=minutes)


# -- the session's check ------------------------------------------------------------------------


def _bound_session() -> str:
    """What a check is bound to: the SHA-256 of the server session's id ("" without one,
    in a host that signs users in without Flask-Login and so has no server sessions)."""
    sid = sessions.current_sid()
    return sessions.sid_hash(sid) if sid is not None else ""


def record_check(user: Any, when: dt.datetime | None = None) -> None:
    """Note in the session that ``user`` passed an MFA check at ``when`` (default now),
    in this server session only; the sign-in is complete, so the session cap applies
    (:func:`.sessions.apply_cap_here`)."""
    rbac = get_rbac()
    at = naive_utc(when or utcnow()).replace(tzinfo=dt.UTC)
    session[SESSION_KEY] = {"user": str(rbac.user_pk(user)), "at": int(at.timestamp()),
                            "sid": _bound_session()}
    request_state().mfa = None
    sessions.apply_cap_here(rbac, rbac.user_pk(user))
    rbac.db.session.commit()


def session_check(user: Any, user_id: Any = None) -> dt.datetime | None:
    """The time ``user`` (whose primary key is ``user_id``, when the caller knows it)
    passed an MFA check in this session, or None."""
    if request_state().token_auth:
        return None  # a token has no session: a cookie sent beside it is not its check
    value = current_session().get(SESSION_KEY)
    if not isinstance(value, dict):
        return None
    if user_id is None:
        user_id = get_rbac().user_pk(user)
    if value.get("user") != str(user_id) or value.get("sid") != _bound_session():
        return None
    try:
        return dt.datetime.fromtimestamp(int(value["at"]), dt.UTC).replace(tzinfo=None)
    except (KeyError, TypeError, ValueError, OverflowError):
        return None


def forget_check(sender: Any = None, **extra: Any) -> None:
    """Flask-Login ``user_logged_out`` receiver: the next sign-in needs a new code."""
    session.pop(SESSION_KEY, None)


# -- the member's state in this request ----------------------------------------------------------


@dataclass(frozen=True)
class MfaState:
    """What the request's user has and owes.

    ``enrolled``: a confirmed TOTP credential, or a check by the host's own
    MFA; ``own_credential``: the plugin's TOTP is on (so the session must
    pass the verification page); ``required``: the workspace's policy
    requires MFA of the member; ``checked_at``: the session's last check;
    ``step_up_minutes``: how recent a check sensitive actions need;
    ``session``: the server-side session the cookie names and
    ``lifetimes`` its idle timeout and absolute lifetime (the privileged
    ones when the member's real access is privileged).
    """

    enrolled: bool
    own_credential: bool
    required: bool
    checked_at: dt.datetime | None
    step_up_minutes: int
    session: sessions.SessionRecord | None = None
    lifetimes: sessions.Lifetimes = sessions.Lifetimes(Policy.idle_minutes_member,
                                                       Policy.absolute_minutes_member)

    @property
    def must_enrol(self) -> bool:
        return self.required and not self.enrolled

    @property
    def must_verify(self) -> bool:
        return self.own_credential and self.checked_at is None

    def fresh(self, now: dt.datetime | None = None) -> bool:
        """Whether the last check is recent enough for a sensitive action."""
        return is_recent(self.checked_at, self.step_up_minutes, now or utcnow())


#: The policy values :func:`mfa_state` reads: MFA, step-up, then the four lifetimes.
_POLICY_VALUES = ("mfa", "step_up_minutes", "idle_minutes_privileged",
                  "absolute_minutes_privileged", "idle_minutes_member", "absolute_minutes_member")


def _read_account(rbac: RBACProtocol, facts: Visit
                  ) -> tuple[Any, list[Any], sessions.SessionRecord]:
    """The request's user's credential confirmation, the policy values of
    :data:`_POLICY_VALUES` (None: the defaults) and the session record.

    Read with the user by :func:`~crm_rbac_plugin.identity.load_user` when it
    could (the visit's :class:`~crm_rbac_plugin.resolve.AccountRow`, for this
    very session id), else by one query.
    """
    account = facts.account
    if account is not None:
        record = sessions.SessionRecord(
            has_id=facts.session_id is not None, id=account.session_id,
            created_at=account.session_created_at, last_seen_at=account.session_last_seen_at,
            revoked_at=account.session_revoked_at)
        return (account.mfa_confirmed_at, [getattr(account, f) for f in _POLICY_VALUES],
                record)
    uid, ws = facts.user_id, facts.workspace_id
    C, P = rbac.models.MfaCredential, rbac.models.SecurityPolicy
    confirmed, *values = rbac.db.session.execute(sa.select(
        sa.select(C.confirmed_at).where(C.user_id == uid).scalar_subquery(),
        *(sa.select(getattr(P, f)).where(P.workspace_id == ws).scalar_subquery()
          for f in _POLICY_VALUES),
        *sessions.lookup_columns(rbac, uid),
    ), execution_options=BYPASS).one()
    n = len(_POLICY_VALUES)
    return confirmed, values[:n], sessions.record_from(values[n:])


def mfa_state() -> MfaState | None:
    """The request's user's :class:`MfaState` (None: nobody signed in), cached per request.

    It carries the workspace's policy and the session row the cookie names,
    read with the user (no round trip of its own), for the gate's checks.
    """
    if signed_in_user() is None:
        return None
    cached: MfaState | None = request_state().mfa
    if cached is not None:
        return cached
    rbac = get_rbac()
    facts = visit(rbac)
    return mfa_state_of(rbac, facts) if facts is not None else None


def mfa_state_of(rbac: RBACProtocol, facts: Visit) -> MfaState:
    """:func:`mfa_state` for the facts the ``before_request`` pass read already."""
    state = facts.state
    if state.mfa is not None:
        return state.mfa  # type: ignore[no-any-return]
    user = facts.user
    confirmed, values, record = _read_account(rbac, facts)
    policy, minutes, idle_p, abs_p, idle_m, abs_m = values
    hook = rbac.hooks.mfa_verified
    host_at = hook(user) if hook is not None else None
    access = rbac.current_access()  # resolves state.real_access while viewing as
    real = state.real_access or access
    privileged = is_privileged(real)
    state.mfa = MfaState(
        enrolled=confirmed is not None or host_at is not None,
        own_credential=confirmed is not None,
        required=must_enrol(policy or "nobody", real),
        checked_at=(naive_utc(host_at) if host_at is not None
                    else session_check(user, facts.user_id)),
        step_up_minutes=int(minutes or facts.settings.step_up_minutes),
        session=record,
        lifetimes=sessions.Lifetimes(
            int(idle_p or Policy.idle_minutes_privileged),
            int(abs_p or Policy.absolute_minutes_privileged)) if privileged else
        sessions.Lifetimes(int(idle_m or Policy.idle_minutes_member),
                           int(abs_m or Policy.absolute_minutes_member)))
    return state.mfa


def owes_check() -> bool:
    """Whether the request's session still owes its MFA code or enrolment.

    Such a session holds the password alone: the gate lets it reach only the
    verification and enrolment pages, the sign-out and pages without an
    endpoint (a 404), and those show it nothing of the account (its
    workspaces, its roles' navigation, its name): templates render as for an
    anonymous visitor (``rbac_signed_in()`` is False, ``rbac_can`` False).
    """
    if signed_in_user() is None or request_state().token_auth:
        return False
    state = mfa_state()
    return state is not None and (state.must_verify or state.must_enrol)


# -- step-up -------------------------------------------------------------------------------------


def return_path() -> str:
    """Where the member comes back after verifying: this page, or for a POST the page
    that sent it (its form's ``next``, else the referring page of this site)."""
    if request.method in ("GET", "HEAD"):
        return request.full_path.rstrip("?")
    target = safe_next(request.form.get("next"), "")
    if target:
        return target
    ref = urlsplit(request.referrer or "")
    if ref.netloc == request.host and ref.path:
        return safe_next(ref.path + (f"?{ref.query}" if ref.query else ""), "/")
    return "/"


def page_url(endpoint: str, **args: Any) -> str | None:
    """The URL of one of the plugin's MFA pages, or None when the host left them out."""
    try:
        return url_for(endpoint, **args)
    except BuildError:
        return None


def refuse(error: str, message: str, endpoint: str, status: int = 403) -> Any:
    """Send a browser to the MFA page ``endpoint`` (coming back here); a JSON client
    gets ``status`` with ``{"error", "message"}``."""
    target = page_url(endpoint, next=return_path())
    if target is not None and not wants_json() and not request_state().token_auth:
        return redirect(target)
    response = jsonify(error=error, message=message)
    response.status_code = status
    return response


def require_recent_mfa(view: F) -> F:
    """Refuse ``view`` unless the session passed an MFA check within ``step_up_minutes``.

    Only members who are enrolled or must be are asked; others pass. Put it
    below the permission check, so that a refused member is refused first::

        @bp.post("/view-as")
        @require_permission("settings.view")
        @require_recent_mfa
        def view_as_start(): ...
    """
    @wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        state = mfa_state() if request.method not in EXEMPT_METHODS else None
        if state is not None and state.must_enrol:
            return refuse("mfa_required", "Turn on two-factor authentication first.",
                          ENROL_ENDPOINT)
        if state is not None and (state.enrolled or state.required) and not state.fresh():
            return refuse("mfa_step_up_required",
                          "Confirm it is you: enter a code from your authenticator app.",
                          VERIFY_ENDPOINT)
        return current_app.ensure_sync(view)(*args, **kwargs)
    return wrapped  # type: ignore[return-value]
