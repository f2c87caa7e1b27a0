"""Personal API tokens: created by a member, stored hashed, revocable.

A token is bound to one membership, so a request authenticated by it acts as
that member in that workspace, with exactly their access: never wider, and
nothing at all once the membership or the user is deactivated.

Deactivating a membership revokes its tokens (:func:`install` listens on
the session's flush, so every path that sets ``Membership.status`` away from
``"active"`` is covered, not only :func:`.team.deactivate`). Reactivating the
member therefore restores their sign-in, not their tokens: a token taken
while the member was away (or by the person who left) stays dead, and the
member issues new ones.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.orm import Session

from .errors import PermissionDenied, ValidationError
from .models import utcnow

if TYPE_CHECKING:
    from .interface import RBACProtocol

PREFIX = "crmrbac_"


def hash_token(plaintext: str) -> str:
    return hashlib.sha256(plaintext.encode()).hexdigest()


def create_token(rbac: RBACProtocol, membership: Any, name: str,
                 expires_at: dt.datetime | None = None) -> tuple[Any, str]:
    """Create a token for ``membership``; the plaintext is returned only now."""
    if not isinstance(name, str) or not name.strip() or len(name) > 80:
        raise ValidationError("a token needs a name of 1 to 80 characters", field="name")
    if membership.status != "active":
        raise PermissionDenied("Only active members can create API tokens.")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("the expiry is in the past", field="expires_at")
    plaintext = PREFIX + secrets.token_urlsafe(32)
    token = rbac.models.ApiToken(membership=membership, name=name.strip(),
                                 token_hash=hash_token(plaintext),
                                 prefix=plaintext[:12], expires_at=expires_at)
    rbac.db.session.add(token)
    rbac.db.session.flush()
    return token, plaintext


def revoke_token(rbac: RBACProtocol, membership: Any, token: Any) -> None:
    """Revoke one of ``membership``'s own tokens."""
    if token.membership_id != membership.id:
        raise PermissionDenied("You can only revoke your own tokens.")
    token.revoked_at = token.revoked_at or utcnow()
    rbac.db.session.flush()


def revoke_member_tokens(rbac: RBACProtocol, membership_id: int) -> int:
    """Revoke every live token of a membership; return how many were revoked."""
    m = rbac.models
    session = rbac.db.session
    now = utcnow()
    with session.no_autoflush:
        live = session.scalars(sa.select(m.ApiToken).where(
            m.ApiToken.membership_id == membership_id, m.ApiToken.revoked_at.is_(None))).all()
    for token in live:
        token.revoked_at = now
    return len(live)


def left_active(membership: Any) -> bool:
    """Whether this flush gives ``membership`` a status other than Active.

    Any change to a non-active status counts, even when the old value was not
    loaded: a pending or inactive member's tokens authenticate nobody anyway,
    so revoking them costs nothing.
    """
    history = sa.inspect(membership).attrs.status.history
    return history.has_changes() and membership.status != "active"


def _revoke_on_deactivation(rbac: RBACProtocol, session: Session) -> None:
    Membership = rbac.models.Membership
    for obj in list(session.dirty):
        if isinstance(obj, Membership) and left_active(obj):
            revoke_member_tokens(rbac, obj.id)


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Revoke a membership's tokens in the flush that takes it out of Active."""
    event.listen(db_session, "before_flush",
                 lambda session, context, instances: _revoke_on_deactivation(rbac, session))


def membership_for_token(rbac: RBACProtocol, plaintext: str) -> Any:
    """Return the active membership a token authenticates, or None.

    None also for a token of a deleted workspace: a token acts as its member
    in its workspace only, and a deleted workspace refuses every page, API
    call and token of its members (:mod:`.lifecycle.deletion`), restore
    included, which an Owner does from a signed-in session."""
    if not plaintext.startswith(PREFIX):
        return None
    m = rbac.models
    token = rbac.db.session.scalar(sa.select(m.ApiToken).where(
        m.ApiToken.token_hash == hash_token(plaintext)))
    now = utcnow()
    if token is None or token.revoked_at is not None or (
            token.expires_at is not None and token.expires_at <= now):
        return None
    membership = token.membership
    if (membership.status != "active" or membership.workspace.deleted_at is not None
            or not getattr(membership.user, "is_active", True)):
        return None
    token.last_used_at = now
    return membership
