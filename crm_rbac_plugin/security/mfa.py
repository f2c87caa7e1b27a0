"""Multi-factor authentication: TOTP enrolment, verification, recovery codes, reset.

The credential belongs to the account, not to a workspace: a person enrols
once and the same authenticator app answers in every workspace they belong
to. Whether they *must* enrol is the workspace's policy (:mod:`.stepup`).

Rules:

* Enrolment has two steps. :func:`start_enrolment` stores an unconfirmed
  secret (the page shows it and its QR code); :func:`confirm_enrolment`
  activates it only when the member types a valid code from their app, and
  returns the 10 recovery codes, which are shown once and stored hashed
  (see :mod:`.totp`). Until then the account has no MFA.
* A pending secret belongs to one enrolment attempt in one session: the
  page keeps :func:`enrolment_tag` (a hash of the server session's id and
  the secret) in the session that drew it. Any other session, or one
  without the tag, gets a new secret, which replaces the pending one: a
  secret seen elsewhere (a thief's session, a shoulder-surfed screen) is
  never the one a later set-up confirms. A pending secret expires
  :data:`PENDING_LIFETIME` after it was drawn.
* A TOTP code is accepted once: the accepted step is written with a
  conditional ``UPDATE ... WHERE last_step < step``, so two requests racing
  with the same code (two workers) cannot both succeed.
* A recovery code is accepted once, by the same kind of conditional update
  on ``used_at``.
* A member turns their own MFA off (:func:`turn_off`) with their password,
  unless a workspace of theirs requires it of them: then only an Owner's
  reset removes it, so that a stolen password never lets someone enrol
  their own phone in its place.
* Every failed check of an enrolled account is audited ``auth.mfa_failed``;
  enrolment ``auth.mfa_enrolled``; turning it off ``auth.mfa_turned_off``;
  an Owner's reset ``auth.mfa_reset``.

The services flush; the caller commits (the settings pages through
:func:`..settings.blueprint.attempt`).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from ..errors import PermissionDenied, RuleConflict, ValidationError
from ..loader import BYPASS
from ..models import utcnow
from . import sessions, totp
from .standing import account_action_refusal
from .stepup import must_enrol

if TYPE_CHECKING:
    from ..interface import RBACProtocol
    from ..policy import Access

#: What :func:`mfa_status` reports per user.
STATUSES = ("on", "pending", "off")
#: How long a pending secret can be confirmed after it was drawn.
PENDING_LIFETIME = dt.timedelta(minutes=15)
#: The message every refused code gets, whatever the reason (unknown account included).
INVALID_CODE = "That code is not valid. Enter the current code from your authenticator app, " \
               "or an unused recovery code."


def throttle_name(user_id: Any) -> str:
    """The name wrong codes are counted under (:mod:`.throttle`, kind ``MFA``: never a
    typed sign-in address's key), beside the client's IP.

    Anonymous attempts share one name, so they are throttled like an
    account's: the answers do not tell the two apart.
    """
    return f"mfa:{user_id}" if user_id is not None else "mfa:anonymous"


def credential(rbac: RBACProtocol, user_id: Any) -> Any:
    """Return the user's MFA credential (confirmed or not), or None."""
    C = rbac.models.MfaCredential
    return rbac.db.session.scalar(sa.select(C).where(C.user_id == user_id))


def is_enrolled(rbac: RBACProtocol, user_id: Any) -> bool:
    """Whether the user has confirmed a TOTP credential."""
    C = rbac.models.MfaCredential
    return rbac.db.session.scalar(
        sa.select(C.id).where(C.user_id == user_id, C.confirmed_at.is_not(None))) is not None


def enrolment_tag(cred: Any, holder: str) -> str:
    """The tag binding the pending credential ``cred`` to ``holder`` (the SHA-256 of the
    server session's id): the session that drew the secret keeps it."""
    return hashlib.sha256(f"{holder}\0{cred.id}\0{cred.secret}".encode()).hexdigest()


def _is_own(cred: Any, tag: str | None, holder: str, now: dt.datetime) -> bool:
    """Whether the pending ``cred`` is the attempt ``tag`` names (None: a caller without
    sessions) and is still within :data:`PENDING_LIFETIME`."""
    if now - cred.created_at > PENDING_LIFETIME:
        return False
    return tag is None or hmac.compare_digest(tag, enrolment_tag(cred, holder))


def start_enrolment(rbac: RBACProtocol, user_id: Any, *, tag: str | None = None,
                    holder: str = "", now: dt.datetime | None = None) -> Any:
    """Return the pending credential of this enrolment attempt, drawing a new secret
    unless ``tag`` names the pending one of ``holder`` and it has not expired.

    A new secret replaces any other pending one (the page then keeps
    :func:`enrolment_tag` of the result). A caller without sessions passes
    ``tag=None`` and draws a new secret each time. Refused (409) when the user
    is enrolled already: a second secret would silently replace the one their
    app holds; an Owner's reset comes first.
    """
    now = now or utcnow()
    cred = credential(rbac, user_id)
    if cred is not None and cred.confirmed_at is not None:
        raise RuleConflict("Two-factor authentication is already on.", field="code")
    if cred is None:
        cred = rbac.models.MfaCredential(user_id=user_id, secret=totp.new_secret(),
                                         created_at=now)
        rbac.db.session.add(cred)
    elif tag is None or not _is_own(cred, tag, holder, now):
        cred.secret, cred.created_at, cred.last_step = totp.new_secret(), now, None
    rbac.db.session.flush()
    return cred


def confirm_enrolment(rbac: RBACProtocol, user_id: Any, code: str, *, tag: str | None = None,
                      holder: str = "", now: dt.datetime | None = None) -> list[str]:
    """Turn MFA on when ``code`` matches the pending secret; return the recovery codes.

    The secret must be this attempt's (``tag`` of ``holder``, as for
    :func:`start_enrolment`; None: a caller without sessions) and not
    expired. A wrong code, another session's secret or an expired one is a
    400 on ``code`` and changes nothing.
    """
    now = now or utcnow()
    cred = credential(rbac, user_id)
    if cred is None or cred.confirmed_at is not None:
        raise ValidationError("Start the set-up again: there is no pending secret.", field="code")
    if not _is_own(cred, tag, holder, now):
        raise ValidationError("This set-up expired or was started elsewhere: scan the new QR "
                              "code below and enter the code your app shows.", field="code")
    step = totp.matching_step(cred.secret, code, now, cred.last_step)
    if step is None:
        raise ValidationError("That code does not match. Check the time on your phone and "
                              "enter the code your app shows now.", field="code")
    cred.confirmed_at, cred.last_step = now, step
    codes = _replace_recovery_codes(rbac, user_id)
    rbac.audit("auth.mfa_enrolled", resource="members", target=f"user #{user_id}",
               user_id=user_id)
    return codes


def verify(rbac: RBACProtocol, user_id: Any, code: str, *,
           now: dt.datetime | None = None) -> str | None:
    """Check a code of an enrolled user; return ``"totp"``, ``"recovery"`` or None.

    A TOTP code is spent by moving ``last_step`` forward, a recovery code by
    setting its ``used_at``, each with a conditional update so a code works
    once even under concurrent requests. A failure is audited
    ``auth.mfa_failed``; a user without MFA simply gets None.
    """
    now = now or utcnow()
    cred = credential(rbac, user_id)
    if cred is None or cred.confirmed_at is None:
        totp.matching_step(totp.new_secret(), code, now, None)  # the same work either way
        return None
    method = None
    step = totp.matching_step(cred.secret, code, now, cred.last_step)
    if step is not None and _spend_step(rbac, cred, step):
        method = "totp"
    elif step is None and not totp.looks_like_totp(totp.normalise_code(code)):
        method = "recovery" if _spend_recovery_code(rbac, user_id, code, now) else None
    if method is None:
        rbac.audit("auth.mfa_failed", resource="members", target=f"user #{user_id}",
                   user_id=user_id)
    return method


def _spend_step(rbac: RBACProtocol, cred: Any, step: int) -> bool:
    C = rbac.models.MfaCredential
    result = rbac.db.session.execute(
        sa.update(C).where(C.id == cred.id, sa.or_(C.last_step.is_(None), C.last_step < step))
        .values(last_step=step).execution_options(synchronize_session=False))
    rbac.db.session.expire(cred, ["last_step"])
    return bool(result.rowcount)


def _secret_keys() -> list[Any]:
    """The app's secret key, then its fallbacks (a key rotation keeps codes working)."""
    config = current_app.config
    return [config.get("SECRET_KEY"), *(config.get("SECRET_KEY_FALLBACKS") or [])]


def _spend_recovery_code(rbac: RBACProtocol, user_id: Any, code: str, now: dt.datetime) -> bool:
    R = rbac.models.RecoveryCode
    hashes = totp.candidate_hashes(code, _secret_keys())
    if not hashes:
        return False
    result = rbac.db.session.execute(
        sa.update(R).where(R.user_id == user_id, R.code_hash.in_(hashes), R.used_at.is_(None))
        .values(used_at=now).execution_options(synchronize_session=False))
    return bool(result.rowcount)


def _replace_recovery_codes(rbac: RBACProtocol, user_id: Any) -> list[str]:
    R = rbac.models.RecoveryCode
    session = rbac.db.session
    session.execute(sa.delete(R).where(R.user_id == user_id)
                    .execution_options(synchronize_session=False))
    key = _secret_keys()[0]
    if not key:
        raise RuntimeError("recovery codes need the app's SECRET_KEY")
    codes = totp.new_recovery_codes()
    session.add_all([R(user_id=user_id, code_hash=totp.hash_recovery_code(c, key)) for c in codes])
    session.flush()
    return codes


def regenerate_recovery_codes(rbac: RBACProtocol, user_id: Any) -> list[str]:
    """Replace the user's recovery codes with 10 new ones (the old ones stop working)."""
    if not is_enrolled(rbac, user_id):
        raise ValidationError("Turn on two-factor authentication first.", field="code")
    codes = _replace_recovery_codes(rbac, user_id)
    rbac.audit("auth.mfa_recovery_codes", resource="members", target=f"user #{user_id}",
               user_id=user_id)
    return codes


def remaining_recovery_codes(rbac: RBACProtocol, user_id: Any) -> int:
    """How many unused recovery codes the user holds."""
    R = rbac.models.RecoveryCode
    return int(rbac.db.session.scalar(sa.select(sa.func.count(R.id)).where(
        R.user_id == user_id, R.used_at.is_(None))) or 0)


def requiring_workspaces(rbac: RBACProtocol, user_id: Any) -> list[str]:
    """The names of the account's workspaces whose security policy requires MFA of it
    (as an active member there, by their roles in force)."""
    M, W, P = rbac.models.Membership, rbac.models.Workspace, rbac.models.SecurityPolicy
    rows = rbac.db.session.execute(
        sa.select(M.id, W.name, P.mfa).join(W, W.id == M.workspace_id)
        .outerjoin(P, P.workspace_id == M.workspace_id)
        .where(M.user_id == user_id, M.status == "active", W.deleted_at.is_(None))
        .order_by(W.name), execution_options=BYPASS).all()
    return [name for mid, name, policy in rows
            if must_enrol(policy or "nobody", rbac.access_for(mid))]


def turn_off(rbac: RBACProtocol, user: Any, password: str | None) -> None:
    """The member turns off their own MFA: the credential and recovery codes go.

    Refused, writing nothing: when MFA is not on (400 on ``password``); when
    a workspace of the account requires it (:class:`..errors.RuleConflict`,
    409, naming the workspaces: an Owner's :func:`reset` is the way to move
    to a new phone there); when ``password`` is not the account's, checked as
    a sign-in checks it (a failure counted and audited, a 429 while the
    account waits). Audited ``auth.mfa_turned_off``; the sessions stay.
    """
    user_id = rbac.user_pk(user)
    if not is_enrolled(rbac, user_id):
        raise ValidationError("Two-factor authentication is not on.", field="password")
    required = requiring_workspaces(rbac, user_id)
    if required:
        raise RuleConflict(
            f"{', '.join(required)} {'requires' if len(required) == 1 else 'require'} "
            "two-factor authentication of you, so it stays on. Lost your phone? An Owner "
            "can reset it, and you set it up again on the new one.", field="password")
    rbac.auth.confirm_password(user, password, field="password",
                               wrong="Your password is not correct.")
    C, R = rbac.models.MfaCredential, rbac.models.RecoveryCode
    for model in (R, C):
        rbac.db.session.execute(sa.delete(model).where(model.user_id == user_id)
                                .execution_options(synchronize_session=False))
    rbac.audit("auth.mfa_turned_off", resource="members", target=f"user #{user_id}",
               user_id=user_id)


def reset(rbac: RBACProtocol, actor: Access, membership: Any) -> None:
    """Remove a member's MFA (lost phone): only an Owner of the member's workspace may,
    and only within their standing over the account (:mod:`.standing`: an
    active member, not an Owner of a workspace the actor does not own).

    The member then signs in with their password alone and, where the
    policy requires it, is sent to enrol again: a *new* sign-in, so every
    session of the account ends (``session.revoked``, reason ``admin``, which
    also rotates the host's session token). A session still waiting at the
    code prompt holds the password alone; the reset must not turn it into a
    full session. Audited ``auth.mfa_reset``.
    """
    if not actor.is_owner:
        raise PermissionDenied("Only an Owner can reset a member's two-factor authentication.",
                               resource="members", action="manage")
    if membership.workspace_id != actor.workspace_id:
        raise PermissionDenied("not found", resource="members", action="manage")
    refusal = account_action_refusal(rbac, actor, membership)
    if refusal is not None:
        raise PermissionDenied(refusal, resource="members", action="manage")
    _remove(rbac, membership, by=actor, keep_current=membership.user_id == actor.user_id)


def reset_by_operator(rbac: RBACProtocol, membership: Any) -> None:
    """:func:`reset` for whoever runs the server (``flask rbac security mfa-reset``): the
    way back in for an account no Owner can reset, as a sole Owner who lost both their
    phone and their recovery codes. Audited ``auth.mfa_reset`` with no actor and
    ``via="command line"``; every session of the account ends."""
    _remove(rbac, membership, by=None, keep_current=False, via="command line")


def _remove(rbac: RBACProtocol, membership: Any, *, by: Access | None, keep_current: bool,
            **detail: Any) -> None:
    C, R = rbac.models.MfaCredential, rbac.models.RecoveryCode
    session = rbac.db.session
    had = is_enrolled(rbac, membership.user_id)
    for model in (R, C):
        session.execute(sa.delete(model).where(model.user_id == membership.user_id)
                        .execution_options(synchronize_session=False))
    rbac.audit("auth.mfa_reset", workspace_id=membership.workspace_id, resource="members",
               target=f"member #{membership.id} {membership.display_name}",
               membership_id=membership.id, was_enrolled=had, **detail)
    sessions.revoke_all(rbac, membership.user_id, except_current=keep_current, by=by,
                        reason="admin")


def mfa_status(rbac: RBACProtocol, user_ids: Iterable[Any]) -> dict[Any, str]:
    """Return ``{user_id: "on" | "pending" | "off"}`` for each of ``user_ids`` (one query)."""
    ids = list(user_ids)
    out = dict.fromkeys(ids, "off")
    if not ids:
        return out
    C = rbac.models.MfaCredential
    rows = rbac.db.session.execute(sa.select(C.user_id, C.confirmed_at).where(C.user_id.in_(ids)))
    for user_id, confirmed_at in rows:
        out[user_id] = "on" if confirmed_at is not None else "pending"
    return out
