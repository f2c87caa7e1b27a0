"""HTTP hardening of the demo CRM: the secret key, cookie flags and security headers.

Rules, each one secure by default:

* **Secret key.** ``SECRET_KEY`` comes from ``FLASK_SECRET_KEY`` (or
  ``SECRET_KEY``) in the environment, the ``SECRET_KEY`` config, or the file
  ``CRM_SECRET_KEY_FILE`` (default ``instance/secret_key``, which
  ``scripts/demo.sh`` creates). Outside debug and testing, a missing,
  well-known or short key stops :func:`crm_app.create_app` with a
  :class:`RuntimeError`: with a known key anyone can forge a session. Debug
  and test runs without a key get a random one per process.
* **Transport.** ``CRM_HTTPS`` (``FLASK_CRM_HTTPS``) says the app is served
  over HTTPS. It defaults to true outside debug and testing; set it to
  ``false`` for a plain-HTTP local run (the demo script does). When true,
  session and remember-me cookies are ``Secure``, plain-HTTP requests are
  redirected to HTTPS, and HTTPS answers carry HSTS. Cookies are always
  ``HttpOnly`` and ``SameSite=Lax``; remember-me lasts
  ``REMEMBER_COOKIE_DURATION`` (default 14 days).
* **Headers.** Flask-Talisman adds to every response (pages, JSON API,
  static files, error pages, Flask-Admin) a Content-Security-Policy that
  allows scripts and styles from this origin only (:data:`CSP`; the app's
  JavaScript lives in ``static/js/app.js``, wired by ``data-`` attributes),
  ``frame-ancestors 'none'``, ``X-Frame-Options: DENY``,
  ``X-Content-Type-Options: nosniff`` and ``Referrer-Policy: same-origin``.
* **Hosts.** ``TRUSTED_HOSTS`` (Flask's; ``FLASK_TRUSTED_HOSTS``) defaults
  to 127.0.0.1, localhost and the hosts of ``SERVER_NAME`` and
  ``RBAC_BASE_URL``: a request naming any other ``Host`` gets a 400, so no
  link the app builds from a request (a mail's, a redirect's) points to a
  host a client chose. A deployment sets ``RBAC_BASE_URL`` (or
  ``TRUSTED_HOSTS``) to its address.
* **Flask-Admin** pages get :func:`admin_csp`: Flask-Admin's templates carry a
  few fixed inline event handlers and inline ``<script>`` blocks, so its
  pages allow exactly those handlers by hash (``'unsafe-hashes'``), its
  ``<script>`` tags by a per-request nonce, and inline styles (its widgets
  set them). Nothing a request supplies can match a hash or learn the nonce.
"""

from __future__ import annotations

import base64
import datetime as dt
import functools
import hashlib
import os
import secrets
from collections.abc import Callable, Iterable
from typing import Any
from urllib.parse import urlsplit

from flask import Flask, request
from flask_talisman import Talisman

#: Keys that must never sign a production session (this project's old default among them).
KNOWN_SECRET_KEYS = frozenset({"dev-only-change-me", "dev", "secret", "change-me", "changeme",
                               "test", "secret-key"})
#: Shorter keys are refused outside debug and testing.
MIN_SECRET_KEY_LENGTH = 16

#: The policy of every response outside Flask-Admin: nothing inline, nothing off-site.
CSP: dict[str, str] = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",
    "font-src": "'self'",
    "connect-src": "'self'",
    "object-src": "'none'",
    "base-uri": "'self'",
    "form-action": "'self'",
    "frame-ancestors": "'none'",
}

#: Flask-Admin's inline event handlers (its Bootstrap 4 templates), allowed by hash on its pages.
ADMIN_HANDLERS: tuple[str, ...] = (
    "return faHelpers.safeConfirm('Are you sure you want to delete this record?');",
    "return false;",
    # The href of its dropdown toggles: Chromium checks a javascript: URL like a handler.
    "javascript:void(0)",
)

DEFAULTS: dict[str, Any] = {
    # None: true outside debug and testing (see the module docstring).
    "CRM_HTTPS": None,
    "CRM_SECRET_KEY_FILE": None,  # None: <instance>/secret_key
    "REMEMBER_COOKIE_DURATION": dt.timedelta(days=14),
}


class InsecureSecretKey(RuntimeError):
    """Raised by :func:`init_app` when no usable ``SECRET_KEY`` is configured."""


def init_app(app: Flask) -> Talisman:
    """Check the secret key, set the cookie flags and install the security headers."""
    _load_secret_key(app)
    https = _https(app)
    app.config["CRM_HTTPS"] = https
    app.config.update(
        SESSION_COOKIE_SECURE=https, SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax", REMEMBER_COOKIE_SECURE=https,
        REMEMBER_COOKIE_HTTPONLY=True, REMEMBER_COOKIE_SAMESITE="Lax")
    # One Talisman per app: it keeps the app and its options on itself.
    talisman = Talisman(
        app, force_https=https, session_cookie_secure=https,
        session_cookie_samesite="Lax", strict_transport_security=https,
        frame_options="DENY", content_security_policy=CSP,
        referrer_policy="same-origin", x_content_type_options=True)
    app.extensions["talisman"] = talisman
    if not app.config.get("TRUSTED_HOSTS"):
        app.config["TRUSTED_HOSTS"] = trusted_hosts(app)
    return talisman


#: The demo's own addresses (scripts/demo.sh serves on 127.0.0.1; browsers also say localhost).
LOCAL_HOSTS = ("127.0.0.1", "localhost")


def trusted_hosts(app: Flask) -> list[str]:
    """The hosts a request may name: :data:`LOCAL_HOSTS` and those of ``SERVER_NAME``
    and ``RBAC_BASE_URL``."""
    hosts = set(LOCAL_HOSTS)
    for value in (app.config.get("SERVER_NAME"), app.config.get("RBAC_BASE_URL")):
        if value:
            text = str(value)
            host = urlsplit(text if "//" in text else f"//{text}").hostname
            if host:
                hosts.add(host)
    return sorted(hosts)


def _https(app: Flask) -> bool:
    value = app.config.get("CRM_HTTPS")
    if value is None:
        return not (app.debug or app.testing)
    if isinstance(value, str):
        return value.strip().lower() not in ("", "0", "false", "no", "off")
    return bool(value)


def _secret_key_file(app: Flask) -> str:
    return str(app.config.get("CRM_SECRET_KEY_FILE")
               or os.path.join(app.instance_path, "secret_key"))


def _load_secret_key(app: Flask) -> None:
    """Set ``SECRET_KEY`` from the config or the key file; refuse a weak one in production."""
    key = app.config.get("SECRET_KEY") or os.environ.get("SECRET_KEY")
    path = _secret_key_file(app)
    if not key and os.path.isfile(path):
        with open(path, encoding="utf-8") as handle:
            key = handle.read().strip()
    if app.debug or app.testing:
        app.config["SECRET_KEY"] = key or secrets.token_hex(32)
        return
    if not isinstance(key, (str, bytes)) or not key:
        raise InsecureSecretKey(
            "SECRET_KEY is not set: set FLASK_SECRET_KEY or write a random key to "
            f"{path} (scripts/demo.sh creates one); without it sessions could be forged.")
    text = key.decode("utf-8", "replace") if isinstance(key, bytes) else key
    if text in KNOWN_SECRET_KEYS or len(text) < MIN_SECRET_KEY_LENGTH:
        raise InsecureSecretKey(
            f"SECRET_KEY is a well-known or short value (under {MIN_SECRET_KEY_LENGTH} "
            "characters): set FLASK_SECRET_KEY to a random one, e.g. "
            "python -c 'import secrets; print(secrets.token_hex(32))'.")
    app.config["SECRET_KEY"] = key


def _hash_source(source: str) -> str:
    digest = hashlib.sha256(source.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


def admin_csp(handlers: Iterable[str]) -> dict[str, str]:
    """The policy of Flask-Admin pages: :data:`CSP` plus its fixed handlers, nonce and styles."""
    hashes = " ".join(_hash_source(h) for h in sorted(set(handlers)))
    return {**CSP, "script-src": f"'self' 'unsafe-hashes' {hashes}",
            "style-src": "'self' 'unsafe-inline'"}


def admin_handlers(admin: Any) -> list[str]:
    """Flask-Admin's inline handlers for ``admin``'s views: the fixed ones and one per action."""
    handlers = list(ADMIN_HANDLERS)
    for view in getattr(admin, "_views", []):
        for name, _text in getattr(view, "_actions", None) or []:
            handlers.append(f"return modelActions.execute('{name}');")
    return handlers


def csp_nonce() -> str:
    """The request's CSP nonce (Talisman draws it for views that ask for one)."""
    return str(getattr(request, "csp_nonce", ""))


def protect_admin(app: Flask, admin: Any) -> None:
    """Give every Flask-Admin endpoint :func:`admin_csp` and a script nonce.

    Talisman reads per-view options from the view function; Flask-Admin's
    views are bound methods, so each endpoint's function is wrapped once.
    """
    options = {"content_security_policy": admin_csp(admin_handlers(admin)),
               "content_security_policy_nonce_in": ["script-src"]}
    names = {view.blueprint.name for view in admin._views if view.blueprint is not None}
    for endpoint, view in list(app.view_functions.items()):
        if endpoint.partition(".")[0] in names:
            app.view_functions[endpoint] = _with_options(view, options)


def _with_options(view: Callable[..., Any], options: dict[str, Any]) -> Callable[..., Any]:
    @functools.wraps(view)
    def wrapped(*args: Any, **kwargs: Any) -> Any:
        return view(*args, **kwargs)

    wrapped.talisman_view_options = dict(options)  # type: ignore[attr-defined]
    return wrapped
