"""Browsers that signed in to an account before: their failures are counted apart.

The account's throttle key (:mod:`.throttle`) counts every failure at its
address, wherever it comes from, and a wait set by someone guessing from
elsewhere would keep the account's owner out too, for as long as the guesses
go on. So a successful sign-in leaves a signed cookie in the browser (a
random id bound to the account's address, ``RBAC_SIGN_IN_DEVICE_DAYS``
days): an attempt that carries it for the typed address is counted under a
key of that browser's own (:data:`.throttle.DEVICE`), which the guesses from
elsewhere never touch. A wrong password from that browser still counts, on
its own key, with the same allowance and waits. The cookie holds no secret
of the account: a forged or tampered one, or one bound to another address,
is ignored (the attempt counts under the account's key).
"""

from __future__ import annotations

import secrets
from typing import Any

from flask import after_this_request, current_app, has_request_context, request
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import setting
from .throttle import address_digest

__all__ = ["COOKIE", "device_of", "remember"]

#: The cookie's name.
COOKIE = "rbac_device"
_SALT = "rbac-known-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=_SALT)


def _address(email: str) -> str:
    return address_digest(email)[:32]  # the cookie names the account, shortened


def _days() -> int:
    return int(setting("RBAC_SIGN_IN_DEVICE_DAYS") or 0)


def device_of(email: str) -> str | None:
    """The id of this browser if it signed in to ``email``'s account before, else None."""
    if not has_request_context() or _days() <= 0:
        return None
    raw = request.cookies.get(COOKIE)
    if not raw:
        return None
    try:
        value: Any = _serializer().loads(raw, max_age=_days() * 86400)
    except BadSignature:
        return None
    if (not isinstance(value, dict) or value.get("a") != _address(email)
            or not isinstance(value.get("d"), str)):
        return None
    return str(value["d"])


def remember(email: str) -> None:
    """Leave (or renew) the cookie on this response: the browser signed in to ``email``."""
    if not has_request_context() or _days() <= 0:
        return
    device = device_of(email) or secrets.token_urlsafe(16)
    value = _serializer().dumps({"a": _address(email), "d": device})
    secure = bool(current_app.config.get("SESSION_COOKIE_SECURE"))

    @after_this_request
    def set_cookie(response: Any) -> Any:
        response.set_cookie(COOKIE, value, max_age=_days() * 86400, httponly=True,
                            secure=secure, samesite="Lax")
        return response
