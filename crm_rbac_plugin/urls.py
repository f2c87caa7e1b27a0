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
"""

from __future__ import annotations

import unicodedata
from urllib.parse import unquote, urlsplit

__all__ = ["safe_next"]

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
