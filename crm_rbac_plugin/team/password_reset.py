"""Password reset by mail: a signed, expiring, single-use link sets a new password.

The threat model: anyone may ask for a reset of any address, and whoever
holds a link may set the account's password.

- **No oracle.** :func:`request_reset` behaves the same for every address,
  known or not, deactivated, without a password or over its limit: the
  page's answer does not change, only whether a mail goes out (audited
  ``auth.reset_requested`` with ``sent``, which the workspace's admins read,
  never the requester). Only an account that can sign in with a password
  (:func:`eligible`) is sent a link.
- **Limits.** The form is limited per client IP (``RBAC_SIGN_IN_RATE_LIMIT``,
  :mod:`..security.limits`) and the mails per address
  (``RBAC_PASSWORD_RESET_RATE_LIMIT``), so nobody floods a mailbox.
- **The link.** An ``itsdangerous`` token signed with ``SECRET_KEY`` (salt
  :data:`RESET_SALT`) naming the account and a fingerprint of its password
  hash and session token (:func:`fingerprint`): setting the password, or
  any rotation of the session token, changes the fingerprint, so a link
  works once and dies with any later password change. It expires after
  ``RBAC_PASSWORD_RESET_MAX_AGE`` seconds, measured on ``rbac.auth.clock``.
  Its URL starts with ``RBAC_BASE_URL`` (:mod:`.mail`), never with the
  request's host.
- **The reset** (:func:`reset_password`) applies the rules a profile's new
  password meets (strength, the strictest of the account's workspaces),
  refuses the current password, ends every session of the account (reason
  ``password_changed``: a host rotates its session token on it, so copied
  cookies die too), forgets the account's failed sign-ins and is audited
  ``auth.password_reset`` in each workspace. It signs nobody in: the owner
  signs in with the new password, and two-factor authentication still applies.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import setting
from ..errors import ValidationError
from ..security import password_rules_for_user, require_password, sessions, user_inputs_of
from ..security import throttle as throttles
from ..security.limits import over_limit
from .checks import has_password, normalise_email, set_password, user_by_email
from .mail import send_password_changed, send_password_reset

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["RESET_SALT", "InvalidResetLink", "eligible", "fingerprint", "notify_reset",
           "request_reset", "reset_password", "reset_token", "user_for_reset_token"]

log = logging.getLogger(__name__)

RESET_SALT = "rbac-password-reset"
#: Rate-limit scope of the reset mails of one address.
ADDRESS_SCOPE = "password-reset-address"


class InvalidResetLink(ValidationError):
    """A reset link that cannot be used; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message, field="token")
        self.status = status


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key, salt=RESET_SALT)  # type: ignore[arg-type]


def fingerprint(user: Any) -> str:
    """A digest of the account's password hash and session token (when it has one):
    it changes whenever either does, which ends every link issued before."""
    material = "\0".join(str(getattr(user, name, "") or "")
                         for name in ("password_hash", "session_token"))
    key = str(current_app.secret_key or "").encode()
    return hmac.new(key, material.encode(), hashlib.sha256).hexdigest()[:32]


def eligible(rbac: RBACProtocol, user: Any) -> bool:
    """Whether ``user`` may be sent a reset link: an active account with a password
    that is not deactivated in every workspace it belongs to (an account with
    no membership yet, as a host's sign-up makes, may reset too)."""
    if user is None or not has_password(user) or getattr(user, "is_active", True) is False:
        return False
    M = rbac.models.Membership
    statuses = set(rbac.db.session.scalars(
        sa.select(M.status).where(M.user_id == rbac.user_pk(user))))
    return not statuses or "active" in statuses


def reset_token(rbac: RBACProtocol, user: Any) -> str:
    """A signed link token for ``user``'s current password."""
    pk = rbac.user_pk(user)
    return _serializer().dumps({"u": pk if isinstance(pk, int) else str(pk),
                                "f": fingerprint(user)})


def request_reset(rbac: RBACProtocol, email: Any, ip: str | None = None) -> bool:
    """Mail a reset link to the account at ``email`` if it may have one; return whether
    a mail went out. The caller answers the same either way (see the module).

    A malformed address is a :class:`ValidationError` on ``email`` (it names
    no account, so saying so tells nothing). Commits the audit event.
    """
    address = normalise_email(email)
    user = user_by_email(rbac, address)
    digest = hashlib.sha256(address.encode()).hexdigest()
    limited = over_limit(setting("RBAC_PASSWORD_RESET_RATE_LIMIT"), ADDRESS_SCOPE, digest)
    sent = not limited and eligible(rbac, user)
    failed = False
    if sent:
        try:
            send_password_reset(rbac, user, reset_token(rbac, user),
                                int(setting("RBAC_PASSWORD_RESET_MAX_AGE")))
        except Exception:  # the mail server: logged and audited, the answer stays the same
            log.exception("the password-reset mail to %s could not be sent", address)
            sent, failed = False, True
    rbac.auth.record(address, "auth.reset_requested", user=user, ip=ip, sent=sent,
                     limited=limited, **({"mail_failed": True} if failed else {}))
    return sent


def notify_reset(rbac: RBACProtocol, user: Any) -> None:
    """Mail ``user`` the notice of a reset, after it is committed; a mail server that
    fails is logged, never a failed page: the password is already changed."""
    try:
        send_password_changed(rbac, user)
    except Exception:
        log.exception("the password-changed notice to %s could not be sent",
                      getattr(user, "email", "?"))


def user_for_reset_token(rbac: RBACProtocol, token: str) -> Any:
    """Return the account a live reset link names, or raise :class:`InvalidResetLink`:
    404 for a link this app did not sign, 400 for an expired or used one."""
    try:
        data, signed_at = _serializer().loads(token, return_timestamp=True)
    except BadSignature:
        raise InvalidResetLink("This link is not a valid password-reset link.", 404) from None
    if not isinstance(data, dict) or not isinstance(data.get("f"), str):
        raise InvalidResetLink("This link is not a valid password-reset link.", 404)
    age = rbac.auth.clock() - signed_at.astimezone(dt.UTC).replace(tzinfo=None)
    if age > dt.timedelta(seconds=int(setting("RBAC_PASSWORD_RESET_MAX_AGE"))):
        raise InvalidResetLink("This link has expired.")
    user = rbac.db.session.get(rbac.user_model, data.get("u"))
    if (user is None or not eligible(rbac, user)
            or not hmac.compare_digest(data["f"], fingerprint(user))):
        raise InvalidResetLink("This link was already used, or the password changed since.")
    return user


def reset_password(rbac: RBACProtocol, user: Any, password: Any, confirm: Any) -> None:
    """Set ``user``'s new password from a reset link and end every session of the account.

    Refuses, writing nothing: a password the account's rules refuse or its
    current one (on ``password``), a confirmation that differs (on
    ``confirm``). The caller commits, then sends the notice (:func:`notify_reset`).
    """
    pk = rbac.user_pk(user)
    password = require_password(password, field="password", user_inputs=user_inputs_of(user),
                                policy=password_rules_for_user(rbac, pk))
    if confirm != password:
        raise ValidationError("The two passwords do not match.", field="confirm")
    check = getattr(user, "check_password", None)
    if check is not None and check(password):
        raise ValidationError("This is your current password: choose a new one.",
                              field="password")
    set_password(user, password)
    rotate = getattr(user, "rotate_session_token", None)
    if callable(rotate):  # copied session and remember-me cookies name nobody from now on
        rotate()
    sessions.revoke_all(rbac, pk, except_current=False, by=None, reason="password_changed")
    email = str(getattr(user, "email", "") or "")
    throttles.reset_account(rbac, email)
    rbac.auth.record(email, "auth.password_reset", user=user, commit=False)
    rbac.db.session.flush()
