"""``rbac.auth``: what a host's sign-in view calls around its password check.

::

    @bp.route("/login", methods=["GET", "POST"])
    @rbac.rate_limited("sign-in")
    def login():
        form = LoginForm()
        if form.validate_on_submit():
            email, ip = form.email.data, request.remote_addr
            throttle = rbac.auth.check(email, ip)
            if not throttle.allowed:                 # the password is not checked
                flash(throttle.message, "error")     # "Too many attempts. Try again in 4 seconds."
            elif (user := verify(email, form.password.data)) is None:
                rbac.auth.failed(email, ip)
                flash("That email and password do not match an account.", "error")
            else:
                login_user(user)
                rbac.auth.succeeded(user, email, ip)
                return redirect(...)
        return render_template("login.html", form=form)

Each call commits its own rows (throttle counts, audit events), because a
failed sign-in's request usually commits nothing else, and sends a signal of
:mod:`..signals` (``sign_in_failed``, ``sign_in_throttled``, ``signed_in``)
for a host that alerts on them.

Audit: ``auth.failed``, ``auth.throttled`` and ``auth.login`` events carry the
IP (the ``ip`` column) and the user agent (``detail.user_agent``). An event
about an account is written once in each workspace the account belongs to,
so the Owners and Admins who read those workspaces' audit pages see attempts
on their members' accounts; an attempt at an unknown address belongs to no
workspace and is stored with ``workspace_id`` None (read it with SQL or the
CLI, it appears on no workspace's page). Unknown and known addresses cost the
same queries: the account is looked up by address in both cases.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app, g, has_request_context, request

from .. import audit, signals
from ..errors import TooManyAttempts, ValidationError
from ..identity import client_ip
from ..models import utcnow
from . import known_devices, signin
from . import throttle as throttles
from .throttle import Throttle

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["SignInGuard"]

USER_AGENT_MAX = 300
#: ``flask.g`` key of the attempts :meth:`SignInGuard.check` counted in this request.
CLAIMS = "_rbac_sign_in_claims"


def _claim_key(email: str, ip: str | None) -> tuple[str, str]:
    return (email or "").strip().lower(), ip or ""


class SignInGuard:
    """The sign-in API, ``rbac.auth``: :meth:`check`, :meth:`failed`, :meth:`succeeded`,
    :meth:`open_workspaces`, :meth:`confirm_password` for a signed-in member's password,
    and :meth:`record` for the account's other events.

    ``clock`` returns naive UTC now; tests replace it to control the waits.
    """

    def __init__(self, rbac: RBACProtocol, clock: Callable[[], dt.datetime] = utcnow) -> None:
        self._rbac = rbac
        self.clock = clock

    def check(self, email: str, ip: str | None = None) -> Throttle:
        """Return whether an attempt at ``email`` from ``ip`` may check its password.

        A refused attempt (``not throttle.allowed``) is audited as
        ``auth.throttled`` and must be answered with ``throttle.message``,
        without checking the password. An allowed one is counted as a failure
        at once (:func:`.throttle.claim`), so simultaneous guesses cannot all
        pass; :meth:`failed` or :meth:`succeeded` then settles it. ``ip``
        defaults to the request's ``remote_addr``.
        """
        ip = _ip(ip)
        name, kind = _counted_as(email)
        result = throttles.claim(self._rbac, name, ip, now=self.clock(), kind=kind)
        if not result.allowed:
            user = self._record(email, ip, "auth.throttled", wait_seconds=result.wait_seconds,
                                scope=result.scope)
            _send(signals.sign_in_throttled, email=email, ip=ip, user=user, throttle=result)
            return result
        # Counted as a failure until its outcome is known, and committed now: the
        # other guesses of a burst see it before this password is checked.
        self._rbac.db.session.commit()
        if has_request_context():
            g.setdefault(CLAIMS, {})[_claim_key(email, ip)] = result.claimed
        return result

    def _claimed(self, email: str, ip: str | None) -> tuple[tuple[str, int], ...]:
        """What :meth:`check` counted for this attempt in this request (taken once)."""
        if not has_request_context():
            return ()
        return tuple(g.get(CLAIMS, {}).pop(_claim_key(email, ip), ()))

    def failed(self, email: str, ip: str | None = None) -> Throttle:
        """Count a wrong password (or an unknown address) and return the wait it sets
        (counted once: :meth:`check` counted the attempt already)."""
        ip = _ip(ip)
        name, kind = _counted_as(email)
        result = throttles.record_failure(self._rbac, name, ip, now=self.clock(), kind=kind,
                                          claimed=self._claimed(email, ip))
        user = self._record(email, ip, "auth.failed", failures=result.failures,
                            wait_seconds=result.wait_seconds)
        _send(signals.sign_in_failed, email=email, ip=ip, user=user, throttle=result)
        return result

    def confirm_password(self, user: Any, password: str | None, *, field: str,
                         wrong: str) -> None:
        """Refuse ``password`` unless it is ``user``'s, checked as a sign-in checks it.

        For a signed-in member re-entering their password (a profile's new
        password, an ownership transfer), so that a stolen session or token
        guesses it no faster than the sign-in page: while the account or the IP
        waits, the password is not checked (:class:`..errors.TooManyAttempts`,
        a 429, audited ``auth.throttled``); a wrong one counts a failure
        (audited ``auth.failed``) and is a :class:`..errors.ValidationError`
        ``wrong`` on ``field``. Both commit their rows, so the caller calls it
        before any write of its own.
        """
        email = str(getattr(user, "email", "") or "")
        waiting = self.check(email)
        if not waiting.allowed:
            raise TooManyAttempts(waiting.message, field=field)
        check = getattr(user, "check_password", None)
        if not password or check is None or not check(password):
            self.failed(email)
            raise ValidationError(wrong, field=field)
        # The right password: the attempt :meth:`check` counted is no failure.
        throttles.release(self._rbac, self._claimed(email, _ip(None)), account=True)
        self._rbac.db.session.commit()

    def succeeded(self, user: Any, email: str | None = None, ip: str | None = None) -> None:
        """Record a sign-in of ``user``: reset the failures it was counted under (the
        account's, or this known browser's), remember the browser, audit ``auth.login``."""
        ip = _ip(ip)
        email = email if email is not None else str(getattr(user, "email", "") or "")
        throttles.release(self._rbac, self._claimed(email, ip))
        name, kind = _counted_as(email)
        throttles.reset_account(self._rbac, name, kind=kind)
        known_devices.remember(email)
        self._record(email, ip, "auth.login", user=user)
        _send(signals.signed_in, user=user, email=email, ip=ip)

    def open_workspaces(self, user: Any) -> list[int]:
        """The workspaces ``user`` may sign in to, first the one a sign-in starts in.

        Empty: every role of the account turns sign-in off (API tokens only):
        refuse it as a wrong password, counting the attempt with :meth:`failed`.
        """
        return signin.open_workspaces(self._rbac, user)

    def deactivated_everywhere(self, user: Any) -> bool:
        """Whether ``user`` was deactivated in every workspace and is invited to none:
        refuse its sign-in as a wrong password (:func:`.signin.deactivated_everywhere`)."""
        return signin.deactivated_everywhere(self._rbac, user)

    # -- audit -----------------------------------------------------------------------

    def record(self, email: str, action: str, *, user: Any = None, ip: str | None = None,
               commit: bool = True, **detail: Any) -> Any:
        """Audit ``action`` about the account named by ``email`` (or ``user``) as the
        sign-in events are: in each of its workspaces, or with no workspace for an
        unknown address, with the IP and the user agent; return the account.

        For the account's other events (a password reset): ``commit=False``
        leaves the rows in the caller's transaction.
        """
        return self._record(email, _ip(ip), action, user=user, commit=commit, **detail)

    def _record(self, email: str, ip: str | None, action: str, *, user: Any = None,
                commit: bool = True, **detail: Any) -> Any:
        """Audit ``action`` in each workspace of the account named by ``email``, commit,
        and return the account (None for an unknown address)."""
        rbac = self._rbac
        found, memberships = self._account(email, user)
        agent = request.user_agent.string[:USER_AGENT_MAX] if has_request_context() else ""
        user_id = rbac.user_pk(found) if found is not None else None
        target = email.strip().lower() if found is not None else ""
        places = memberships or [(None, None)]
        for workspace_id, membership_id in places:
            event = audit.record(rbac, action, workspace_id=workspace_id, resource="account",
                                 target=target, actor_ids=(user_id, membership_id),
                                 user_agent=agent, **detail,
                                 **({} if found is not None else {"account": "unknown"}))
            event.ip = ip
        if commit:
            rbac.db.session.commit()
        return found

    def _account(self, email: str, user: Any) -> tuple[Any, list[tuple[int, int]]]:
        """The account named by ``email`` (or ``user``) and its (workspace, membership) pairs.

        The same two queries run for an unknown address (the second matches
        nothing), so the answer's timing does not tell which addresses exist.
        """
        rbac = self._rbac
        U, M = rbac.user_model, rbac.models.Membership
        column = getattr(U, "email", None)
        if user is None and column is not None:
            user = rbac.db.session.scalar(
                sa.select(U).where(sa.func.lower(column) == (email or "").strip().lower()))
        user_id = rbac.user_pk(user) if user is not None else None
        pairs = rbac.db.session.execute(
            sa.select(M.workspace_id, M.id).where(M.user_id == user_id, M.status != "pending")
            .order_by(M.workspace_id)).all()
        return user, [(ws, mid) for ws, mid in pairs]


def _ip(ip: str | None) -> str | None:
    return ip or client_ip()


def _counted_as(email: str) -> tuple[str, str]:
    """The throttle name and kind an attempt at ``email`` counts under: the browser's
    own when it signed in to that account before (:mod:`.known_devices`), so guesses
    from elsewhere keep it waiting no longer, else the account's."""
    device = known_devices.device_of(email)
    if device is None:
        return email, throttles.ACCOUNT
    return f"{(email or '').strip().lower()}\n{device}", throttles.DEVICE


def _send(signal: Any, **kwargs: Any) -> None:
    signal.send(current_app._get_current_object(), **kwargs)  # type: ignore[attr-defined]
