"""TOTP codes, recovery codes and the enrolment QR code: pure functions, no database.

* **TOTP** (RFC 6238, via ``pyotp``): 6 digits, 30-second steps. A code is
  accepted for the current step and one step either side (clock drift);
  :func:`matching_step` returns the step it belongs to, so the caller stores
  it and refuses that step and every earlier one afterwards: a code seen by
  a shoulder-surfer or a phishing proxy cannot be used a second time.
* **Recovery codes**: 10 per user, ``xxxxx-xxxxx`` from a 32-letter alphabet
  (50 bits each), single use. Only an HMAC-SHA256 of the normalised code is
  stored, keyed with the app's ``SECRET_KEY``: the codes are random, so a
  slow password hash adds nothing against guessing, while the key means a
  copy of the table alone does not let anyone test codes offline. Keys in
  ``SECRET_KEY_FALLBACKS`` are tried too, so a key rotation keeps the codes
  working; a code hashed with a key that is no longer listed stops working
  (the member then regenerates the codes after signing in with TOTP).
* **QR code**: drawn here as an inline SVG element by ``segno``, so the
  secret never leaves the server (no chart service, no ``data:`` image).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import secrets
from collections.abc import Iterable

import pyotp
import segno

from ..inputs import is_digits

#: Seconds per TOTP step (RFC 6238's default; what every authenticator app uses).
STEP_SECONDS = 30
#: Steps accepted either side of the current one.
DRIFT_STEPS = 1
#: How many recovery codes a member holds.
RECOVERY_CODE_COUNT = 10
#: Prefix of a stored recovery-code hash, naming the scheme.
HASH_SCHEME = "hmac-sha256$"
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"  # no 0/o, 1/l/i: read aloud and typed by hand


def new_secret() -> str:
    """Return a new random TOTP secret (base32, 160 bits as RFC 4226 recommends)."""
    return pyotp.random_base32(32)


def provisioning_uri(secret: str, account: str, issuer: str) -> str:
    """Return the ``otpauth://`` URI an authenticator app reads from the QR code."""
    return pyotp.TOTP(secret).provisioning_uri(name=account, issuer_name=issuer)


def qr_svg(uri: str) -> str:
    """Return the QR code of ``uri`` as an inline ``<svg>`` element (no style attribute).

    The size comes from the ``rbac-mfa-qr`` class; the light modules are
    drawn white so the code scans on a dark theme too.
    """
    return str(segno.make(uri, error="m").svg_inline(
        scale=4, border=4, dark="#000", light="#fff", omitsize=True,
        svgclass="rbac-mfa-qr", lineclass=None, title="QR code for your authenticator app"))


def grouped(secret: str) -> str:
    """Return the secret in groups of four letters, easier to type by hand."""
    return " ".join(secret[i:i + 4] for i in range(0, len(secret), 4))


def step_of(when: dt.datetime) -> int:
    """Return the TOTP step of ``when`` (naive values are UTC)."""
    aware = when if when.tzinfo is not None else when.replace(tzinfo=dt.UTC)
    return int(aware.timestamp()) // STEP_SECONDS


def code_at_step(secret: str, step: int) -> str:
    """Return the code of ``secret`` for ``step``."""
    return pyotp.TOTP(secret).at(step * STEP_SECONDS)


def normalise_code(code: str) -> str:
    """Return ``code`` without spaces and dashes, lower-cased (how it is compared)."""
    return "".join(ch for ch in code.strip().lower() if ch not in " -\t")


def looks_like_totp(code: str) -> bool:
    """Whether ``code`` (normalised) is six digits."""
    return len(code) == 6 and is_digits(code)


def matching_step(secret: str, code: str, now: dt.datetime, last_step: int | None) -> int | None:
    """Return the step ``code`` belongs to, or None when it matches no usable step.

    Steps from ``now`` minus :data:`DRIFT_STEPS` to plus it are tried; a step
    at or before ``last_step`` is never usable (the code was used, or a later
    one was). Every candidate is compared in constant time.
    """
    code = normalise_code(code)
    if not looks_like_totp(code):
        return None
    current = step_of(now)
    found = None
    for step in range(current - DRIFT_STEPS, current + DRIFT_STEPS + 1):
        if hmac.compare_digest(code_at_step(secret, step), code) and (
                last_step is None or step > last_step):
            found = step
    return found


def new_recovery_codes(count: int = RECOVERY_CODE_COUNT) -> list[str]:
    """Return ``count`` new recovery codes (``xxxxx-xxxxx``)."""
    def one() -> str:
        letters = "".join(secrets.choice(_ALPHABET) for _ in range(10))
        return f"{letters[:5]}-{letters[5:]}"
    return [one() for _ in range(count)]


def hash_recovery_code(code: str, key: str | bytes) -> str:
    """Return the stored form of ``code``: HMAC-SHA256 with ``key`` (the app's secret key)."""
    raw = key.encode() if isinstance(key, str) else key
    digest = hmac.new(raw, normalise_code(code).encode(), hashlib.sha256).hexdigest()
    return HASH_SCHEME + digest


def candidate_hashes(code: str, keys: Iterable[str | bytes]) -> list[str]:
    """Return the hashes ``code`` would have under each of ``keys`` (current key first)."""
    return [hash_recovery_code(code, key) for key in keys if key]
