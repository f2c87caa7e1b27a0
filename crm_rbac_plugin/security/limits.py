"""Request-rate limits per IP on the sign-in, invitation and password-reset routes,
with Flask-Limiter.

The database throttle (:mod:`.throttle`) slows down *failed* sign-ins; this
limit caps *every* attempt an address makes on a route that checks a secret
(a password, an invitation link), whatever its outcome, so a flood costs the
attacker time before it costs the server hashing. Only the methods that
attempt something (POST) count; showing the form does not.

Each app gets its own ``flask_limiter.Limiter`` (``app.extensions["rbac_limiter"]``),
keyed by ``request.remote_addr`` and stored where ``RBAC_RATELIMIT_STORAGE_URI``
says: ``memory://`` (the default) counts per process, so with several workers
each counts alone; ``redis://127.0.0.1:6379`` shares the counts between
workers and hosts, as production needs. The limit itself is
``RBAC_SIGN_IN_RATE_LIMIT`` (Flask-Limiter's notation, "20 per minute"; None
turns it off). A storage that cannot be reached lets the request through and
logs an error: the database throttle still stands.

A refused attempt gets a 429 with ``Retry-After``: JSON
``{"error": "rate_limited", "message", "retry_after"}`` for JSON clients, the
``rbac/429.html`` page otherwise.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Flask, current_app, jsonify, make_response, render_template, request
from flask_limiter import Limiter
from limits import parse

from ..config import setting
from ..decorators import wants_json

__all__ = ["EXTENSION_KEY", "init_app", "over_limit", "rate_limited", "refusal_for"]

F = TypeVar("F", bound=Callable[..., Any])

#: Where an app keeps its Limiter.
EXTENSION_KEY = "rbac_limiter"
#: The plugin's own routes that check a secret, limited by :func:`init_app`.
PLUGIN_ROUTES: tuple[tuple[str, str], ...] = (
    ("rbac_settings.accept_invitation", "invitation"),
    ("rbac_settings.forgot_password", "password-reset"),
    ("rbac_settings.reset_password", "password-reset"),
    ("rbac_settings.mfa_verify", "mfa-code"),
)
#: The methods that count as an attempt.
ATTEMPT_METHODS = frozenset({"POST", "PUT", "PATCH"})

log = logging.getLogger(__name__)


def _remote_addr() -> str:
    return request.remote_addr or "unknown"


def init_app(app: Flask) -> None:
    """Give ``app`` its Limiter and limit the plugin's invitation route."""
    limiter = Limiter(_remote_addr, storage_uri=setting("RBAC_RATELIMIT_STORAGE_URI", app),
                      strategy="moving-window", key_prefix="rbac", headers_enabled=False)
    # Flask-Limiter installs its request hooks only for a Limiter not yet listed
    # in app.extensions["limiter"]. Listed first, this one gets its storage and
    # strategy configured but no hooks: it limits only the views that ask
    # (rate_limited), and every other request skips the ~300 Python calls of
    # an app-wide check that would find no limit.
    app.extensions.setdefault("limiter", set()).add(limiter)
    limiter.init_app(app)
    app.extensions[EXTENSION_KEY] = limiter
    for endpoint, scope in PLUGIN_ROUTES:
        if endpoint in app.view_functions:
            app.view_functions[endpoint] = rate_limited(scope)(app.view_functions[endpoint])


def refusal_for(scope: str) -> Any:
    """Count this request against ``scope``'s per-IP limit; return the 429 response
    when it is over the limit, None when it may go ahead."""
    limit = setting("RBAC_SIGN_IN_RATE_LIMIT")
    limiter: Limiter | None = current_app.extensions.get(EXTENSION_KEY)
    if limit is None or request.method not in ATTEMPT_METHODS:
        return None
    if limiter is None:
        raise RuntimeError("rate_limited needs the RBAC extension on this app (init_app)")
    item = parse(limit)
    keys = (scope, _remote_addr())
    try:
        if limiter.limiter.hit(item, *keys):
            return None
        reset = limiter.limiter.get_window_stats(item, *keys).reset_time
    except Exception:  # the storage is down: let it through, the DB throttle still stands
        log.exception("rate-limit storage %s unreachable", setting("RBAC_RATELIMIT_STORAGE_URI"))
        return None
    return too_many(max(1, math.ceil(reset - time.time())))


def over_limit(limit: str | None, scope: str, key: str) -> bool:
    """Count one hit of ``key`` under ``scope``; return whether it is past ``limit``.

    For a limit on something other than the client's IP (the password-reset
    mails of one address): the counts live in the same storage as the
    per-IP ones. None (no limit), no Limiter on the app or an unreachable
    storage count nothing and refuse nothing.
    """
    limiter: Limiter | None = current_app.extensions.get(EXTENSION_KEY)
    if limit is None or limiter is None:
        return False
    try:
        return not limiter.limiter.hit(parse(limit), scope, key)
    except Exception:  # the storage is down: let it through, as refusal_for does
        log.exception("rate-limit storage %s unreachable", setting("RBAC_RATELIMIT_STORAGE_URI"))
        return False


def too_many(retry_after: int) -> Any:
    """The 429 answer: JSON for JSON clients, the ``rbac/429.html`` page otherwise."""
    unit = "second" if retry_after == 1 else "seconds"
    message = f"Too many attempts from your address. Try again in {retry_after} {unit}."
    if wants_json():
        response = jsonify(error="rate_limited", message=message, retry_after=retry_after)
    else:
        response = make_response(render_template("rbac/429.html", message=message))
    response.status_code = 429
    response.headers["Retry-After"] = str(retry_after)
    return response


def rate_limited(scope: str = "sign-in") -> Callable[[F], F]:
    """Limit a view's attempts per IP (``RBAC_SIGN_IN_RATE_LIMIT``) under ``scope``.

    For a host's sign-in view (``@rbac.rate_limited("sign-in")``); views with
    the same ``scope`` share one count per address.
    """
    def decorator(view: F) -> F:
        @wraps(view)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            refused = refusal_for(scope)
            if refused is not None:
                return refused
            return current_app.ensure_sync(view)(*args, **kwargs)
        return wrapped  # type: ignore[return-value]
    return decorator


