"""The one rule for where a request may send the browser next.

Every ``next`` (or other redirect target) that comes from a request goes
through :func:`safe_next`: a link that signs someone in, starts "view as" or
submits a form must never forward them to another site (an open redirect
makes phishing pages look like they come from the CRM). Only a path on this
site is accepted, in the one spelling every browser reads the same way:

- it starts with a single ``/`` (not ``//``, which is another host);
- it holds no backslash (browsers read ``/\\host`` as ``//host``);
- it holds no whitespace or control character (browsers drop tabs and
  newlines inside a URL, so ``/\\t/host`` becomes ``//host``);
- it has no scheme or host, also once percent-decoded.

Anything else gives the caller's fallback, never an error.

And the one rule for the site's own address in a mail (:func:`external_base`):
a link a mail carries to the Owners and Admins must point to the CRM, never
to whatever ``Host`` header the request that triggered it sent (any member
could otherwise make the product's own mail link to their host).
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urljoin, urlsplit

from flask import current_app, has_request_context, request

from .config import setting

__all__ = ["LOCAL_BASE_URL", "absolute_url", "external_base", "safe_next"]

#: The base of mail links when nothing says where the site is: the demo's own address.
LOCAL_BASE_URL = "http://127.0.0.1:5000"

#: Percent-decoding rounds checked: a target decoded this often is still a local path.
_DECODE_ROUNDS = 3


def _is_local_path(target: str) -> bool:
    if not target.startswith("/") or target.startswith("//") or "\\" in target:
        return False
    parts = urlsplit(target)
    return not parts.scheme and not parts.netloc


def safe_next(target: object, fallback: str) -> str:
    """Return ``target`` if it is a path on this site, else ``fallback``.

    >>> safe_next("/leads/?page=2", "/")
    '/leads/?page=2'
    >>> safe_next("//evil.example", "/")
    '/'
    """
    if not isinstance(target, str) or not target:
        return fallback
    if any(ch.isspace() or unicodedata.category(ch) in ("Cc", "Cf") for ch in target):
        return fallback
    decoded = target
    for _ in range(_DECODE_ROUNDS):
        if not _is_local_path(decoded):
            return fallback
        decoded = unquote(decoded)
    return target if _is_local_path(decoded) else fallback


def external_base() -> str:
    """The base of absolute links in mails, ending in ``/``.

    ``RBAC_BASE_URL`` when set; else the app's ``SERVER_NAME`` (with
    ``PREFERRED_URL_SCHEME``); else, inside a request of an app whose
    ``TRUSTED_HOSTS`` refuses other hosts (Flask answers 400), the request's
    host; else :data:`LOCAL_BASE_URL`. An unchecked ``Host`` header never
    becomes a link.
    """
    config = current_app.config
    base = setting("RBAC_BASE_URL")
    if not base and config.get("SERVER_NAME"):
        base = f"{config.get('PREFERRED_URL_SCHEME') or 'http'}://{config['SERVER_NAME']}"
    if not base and has_request_context() and config.get("TRUSTED_HOSTS"):
        base = request.host_url
    return str(base or LOCAL_BASE_URL).rstrip("/") + "/"


def absolute_url(path: str) -> str:
    """``path`` (a path on this site) as an absolute URL on :func:`external_base`."""
    return urljoin(external_base(), (path or "/").lstrip("/"))
