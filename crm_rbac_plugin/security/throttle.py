"""Failed sign-ins slow down further attempts, per account and per IP address.

The threat: an attacker guesses one account's password (from one address or
from many), or many accounts' passwords from one address. The answer is a
wait that doubles with each failure past a free allowance (after the 5th
failure 1 s, then 2 s, 4 s ... up to ``RBAC_SIGN_IN_MAX_WAIT``), never a
permanent lock, which an attacker could trigger to keep anyone out. While a
key waits, an attempt is refused *without checking the password* and does
not count as a failure, so the wait does not grow while the attacker keeps
knocking, and the answer tells nothing about the password.

Two keys count each failure:

* ``account:<sha256 of the lower-cased address>``: the typed address,
  whether or not an account has it, so that the count (and its wait) is the
  same for an unknown address as for a real one. Reset by a successful
  sign-in of that account.
* ``device:<sha256 of the address and a browser's id>``, in place of the
  account's key for a browser that signed in to that account before
  (:mod:`.known_devices`): a wait set by guesses from elsewhere does not
  keep the account's own browsers out.
* ``ip:<address>``: the client's address (as the host's WSGI stack reports
  it: behind a proxy, configure werkzeug's ``ProxyFix``). Its allowance is
  larger (``RBAC_SIGN_IN_FREE_FAILURES_PER_IP``: an office behind one NAT
  mistypes too) and a success does not reset it, or an attacker holding one
  account could reset the count between guesses at others.

The MFA code check counts an account's wrong codes the same way, under a
key of its own kind (``mfa:<sha256 of the name>``, :data:`MFA`): the kind
is part of the key, outside the hashed text, so no typed address, whatever
it reads (``mfa:9``), ever counts towards an account's codes, nor a wrong
code towards a typed address.

A count older than ``RBAC_SIGN_IN_FORGET_AFTER`` seconds starts again at 1.

Guesses sent at once are counted as they arrive, not as they finish:
:func:`claim` counts an attempt as a failure *before* its password or code
is checked (and commits), so a burst of simultaneous guesses cannot all pass
a check that reads the count before any of them is recorded. An attempt
that finds more failures counted than it read a moment before (others of
the burst) and a wait owed for them is refused, uncounted, like any attempt
that waits. The attempt's outcome then settles its count:
:func:`record_failure` with the claim sets the wait without counting twice;
a success resets the account's count and takes the attempt off the IP's
(:func:`release`).

The counts live in ``rbac_sign_in_throttle`` so that every worker and every
process sees the same ones: a failure is one atomic ``INSERT ... ON CONFLICT
DO UPDATE SET failures = failures + 1 ... RETURNING failures`` (PostgreSQL
and SQLite), so two workers counting at once both count. Every function
takes ``now`` (naive UTC) so tests control the clock.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite

from ..config import setting
from ..models import utcnow

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["ACCOUNT", "DEVICE", "MFA", "Throttle", "account_key", "check", "claim", "ip_key",
           "record_failure", "release", "reset_account", "wait_after"]

#: The kinds of account keys: a typed sign-in address, an account's MFA code check, a
#: browser that signed in to the address before (:mod:`.known_devices`).
ACCOUNT, MFA, DEVICE = "account", "mfa", "device"


@dataclass(frozen=True)
class Throttle:
    """The answer to "may this attempt go ahead?": ``wait_seconds`` is 0 when it may.

    ``scope`` names the key that waits (``"account"`` or ``"ip"``, empty when
    none does), ``failures`` the count behind it.
    """

    wait_seconds: int = 0
    scope: str = ""
    failures: int = 0
    #: The keys :func:`claim` counted this attempt on, with their counts.
    claimed: tuple[tuple[str, int], ...] = ()

    @property
    def allowed(self) -> bool:
        return self.wait_seconds <= 0

    @property
    def message(self) -> str:
        """The words to show a refused attempt (the same whatever the scope)."""
        unit = "second" if self.wait_seconds == 1 else "seconds"
        return f"Too many attempts. Try again in {self.wait_seconds} {unit}."


def account_key(email: str, kind: str = ACCOUNT) -> str:
    """The throttle key of a typed address (hashed: the table holds no address), or of
    another ``kind`` of name (:data:`MFA`): the kind prefixes the digest, so two kinds
    never share a key whatever the names read."""
    if kind not in (ACCOUNT, MFA, DEVICE):
        raise ValueError(f"unknown throttle kind {kind!r}")
    return f"{kind}:{address_digest(email)}"


def address_digest(email: str) -> str:
    """SHA-256 (hex) of a typed address, trimmed and lower-cased: how the throttle and the
    known-browser cookie name an account without holding its address."""
    return hashlib.sha256((email or "").strip().lower().encode("utf-8")).hexdigest()


def ip_key(ip: str | None) -> str:
    return f"ip:{(ip or 'unknown')[:64]}"


def wait_after(failures: int, *, free: int, max_wait: int) -> int:
    """Seconds to wait after ``failures`` failures: 0 below ``free``, then 1, 2, 4 ...
    doubling with each further failure, at most ``max_wait``."""
    if failures < free:
        return 0
    # 2**30 s exceeds any sensible cap; bounding the exponent keeps the number small.
    return min(2 ** min(failures - free, 30), max_wait)


def _keys(email: str, ip: str | None, kind: str) -> dict[str, str]:
    return {"account": account_key(email, kind), "ip": ip_key(ip)}


def _rows(rbac: RBACProtocol, keys: dict[str, str]) -> list[Any]:
    T = rbac.models.SignInThrottle
    return list(rbac.db.session.execute(
        sa.select(T.key, T.failures, T.blocked_until, T.last_failure_at)
        .where(T.key.in_(keys.values()))).all())


def _waiting(rows: list[Any], keys: dict[str, str], now: dt.datetime) -> Throttle:
    """The longest wait in force among ``rows`` (none: an allowed Throttle)."""
    scope_of = {key: scope for scope, key in keys.items()}
    worst = Throttle()
    for key, failures, blocked_until, _ in rows:
        if blocked_until is None or blocked_until <= now:
            continue
        wait = math.ceil((blocked_until - now).total_seconds())
        if wait > worst.wait_seconds:
            worst = Throttle(wait, scope_of[key], failures)
    return worst


def check(rbac: RBACProtocol, email: str, ip: str | None, *,
          now: dt.datetime | None = None, kind: str = ACCOUNT) -> Throttle:
    """Return the wait in force for an attempt at ``email`` (a name of ``kind``) from
    ``ip`` (reads only).

    The longer of the account's and the address's waits wins.
    """
    keys = _keys(email, ip, kind)
    return _waiting(_rows(rbac, keys), keys, now or utcnow())


def _free() -> dict[str, int]:
    return {"account": setting("RBAC_SIGN_IN_FREE_FAILURES"),
            "ip": setting("RBAC_SIGN_IN_FREE_FAILURES_PER_IP")}


def claim(rbac: RBACProtocol, email: str, ip: str | None, *,
          now: dt.datetime | None = None, kind: str = ACCOUNT) -> Throttle:
    """Let an attempt at ``email`` from ``ip`` check its password (or code), counting it
    as a failure first; or refuse it, uncounted, with the wait in force.

    Runs in the caller's transaction, which must commit before the password
    is checked, so that the other attempts of a burst see this one. An
    allowed answer carries ``claimed``, for :func:`record_failure` (a wrong
    password) or :func:`release` (a right one).
    """
    now = now or utcnow()
    keys = _keys(email, ip, kind)
    rows = _rows(rbac, keys)
    waiting = _waiting(rows, keys, now)
    if not waiting.allowed:
        return waiting
    forget_before = now - dt.timedelta(seconds=setting("RBAC_SIGN_IN_FORGET_AFTER"))
    read = {key: (failures, last) for key, failures, _, last in rows
            if last is not None and last >= forget_before}
    free, max_wait = _free(), setting("RBAC_SIGN_IN_MAX_WAIT")
    claimed: list[tuple[str, int]] = []
    for scope, key in keys.items():
        counted = _bump(rbac, key, now, forget_before)
        claimed.append((key, counted))
        before, last = read.get(key, (0, None))
        # The wait owed after the failures before this one runs from the last of them:
        # one counted since the read (another guess of a burst) is still being
        # checked, so its wait, not yet written, starts now.
        wait = wait_after(counted - 1, free=free[scope], max_wait=max_wait)
        since = now if counted - 1 > before or last is None else last
        if wait and since + dt.timedelta(seconds=wait) > now:
            release(rbac, tuple(claimed), account=True)
            return Throttle(math.ceil((since + dt.timedelta(seconds=wait) - now)
                                      .total_seconds()), scope, counted - 1)
    return Throttle(claimed=tuple(claimed))


def release(rbac: RBACProtocol, claimed: tuple[tuple[str, int], ...], *,
            account: bool = False) -> None:
    """Take a claimed attempt off the IP's count (a right password is no failure of
    the address), and off the account's too with ``account`` (a refused claim)."""
    T = rbac.models.SignInThrottle
    keys = [key for key, _ in claimed if account or key.startswith("ip:")]
    if keys:
        quiet = {"synchronize_session": False}
        rbac.db.session.execute(sa.update(T).where(T.key.in_(keys), T.failures > 0)
                                .values(failures=T.failures - 1), execution_options=quiet)
        # A key the claim brought in leaves no row behind.
        rbac.db.session.execute(sa.delete(T).where(T.key.in_(keys), T.failures <= 0),
                                execution_options=quiet)


def _bump(rbac: RBACProtocol, key: str, now: dt.datetime, forget_before: dt.datetime) -> int:
    """Count one failure on ``key`` atomically; return the new count."""
    table = rbac.models.SignInThrottle.__table__
    c = table.c
    dialect = rbac.db.session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    stale = c.last_failure_at < forget_before
    stmt = insert(table).values(key=key, failures=1, first_failure_at=now, last_failure_at=now,
                                blocked_until=None)
    stmt = stmt.on_conflict_do_update(index_elements=[c.key], set_={
        "failures": sa.case((stale, 1), else_=c.failures + 1),
        "first_failure_at": sa.case((stale, now), else_=c.first_failure_at),
        "last_failure_at": now,
    }).returning(c.failures)
    return int(rbac.db.session.execute(stmt).scalar_one())


def record_failure(rbac: RBACProtocol, email: str, ip: str | None, *,
                   now: dt.datetime | None = None, kind: str = ACCOUNT,
                   claimed: tuple[tuple[str, int], ...] = ()) -> Throttle:
    """Count a failed sign-in against the address and the IP; return the wait it sets.

    With ``claimed`` (from :func:`claim`, which counted the attempt already),
    only the waits are set. Runs in the caller's transaction (the caller
    commits). Each key's wait follows its own count; a concurrent failure that
    counted higher sets the longer wait, never a shorter one.
    """
    now = now or utcnow()
    forget_before = now - dt.timedelta(seconds=setting("RBAC_SIGN_IN_FORGET_AFTER"))
    max_wait = setting("RBAC_SIGN_IN_MAX_WAIT")
    free = _free()
    counted = dict(claimed)
    T = rbac.models.SignInThrottle
    worst = Throttle()
    for scope, key in _keys(email, ip, kind).items():
        failures = counted[key] if key in counted else _bump(rbac, key, now, forget_before)
        wait = wait_after(failures, free=free[scope], max_wait=max_wait)
        if wait:
            until = now + dt.timedelta(seconds=wait)
            rbac.db.session.execute(
                sa.update(T).where(T.key == key, sa.or_(T.blocked_until.is_(None),
                                                        T.blocked_until < until))
                .values(blocked_until=until), execution_options={"synchronize_session": False})
        if wait > worst.wait_seconds or (not worst.scope and scope == "account"):
            worst = Throttle(wait, scope, failures)
    return worst


def reset_account(rbac: RBACProtocol, email: str, *, kind: str = ACCOUNT) -> None:
    """Forget the failures of ``email`` (a name of ``kind``; after its account signed
    in); the IP's stay."""
    T = rbac.models.SignInThrottle
    rbac.db.session.execute(sa.delete(T).where(T.key == account_key(email, kind)),
                            execution_options={"synchronize_session": False})


def failures_of(rbac: RBACProtocol, key: str) -> Any:
    """The row of ``key`` (for tests and the admin's eyes), or None."""
    T = rbac.models.SignInThrottle
    return rbac.db.session.scalar(sa.select(T).where(T.key == key))
