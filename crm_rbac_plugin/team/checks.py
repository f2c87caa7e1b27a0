"""Checks and look-ups every team service shares.

Each service first passes the actor through :func:`require` (the right it
needs) and :func:`same_workspace` (every object lies in the actor's
workspace), and records what it changed with :func:`audit_action`.
:func:`privileged` tells a member holding an Owner or Admin role, whom the
lifecycle, department and visibility services let only an Owner change.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import ValidationError
from ..roles import held_roles, is_privileged, require, same_workspace

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["EMAIL_MAX", "audit_action", "has_password", "membership_of", "normalise_email", "privileged",
           "require", "same_workspace", "set_password", "user_by_email"]

EMAIL_MAX = 255


def audit_action(rbac: RBACProtocol, who: Any, action: str, **details: Any) -> None:
    """Add to the audit trail when the extension has one.

    ``who`` is the actor's Access (or the membership acting on its own, as
    when accepting an invitation), so CLI runs are attributed too.
    """
    record = getattr(rbac, "audit", None)
    if record is not None:
        user_id = getattr(who, "user_id", None)
        membership_id = getattr(who, "membership_id", None) or getattr(who, "id", None)
        record(action, actor_ids=(user_id, membership_id), **details)


def privileged(rbac: RBACProtocol, membership: Any) -> bool:
    """Whether ``membership`` holds a privileged role (:func:`..roles.is_privileged`),
    directly or through their department (:func:`..roles.held_roles`)."""
    return any(is_privileged(role) for role in held_roles(rbac, membership))


def normalise_email(email: Any) -> str:
    if not isinstance(email, str):
        raise ValidationError("an email address is required", field="email")
    email = email.strip().lower()
    local, at, domain = email.partition("@")
    if not at or not local or "." not in domain or len(email) > EMAIL_MAX or " " in email:
        raise ValidationError(f"{email or 'that'} is not an email address", field="email")
    return email


def user_by_email(rbac: RBACProtocol, email: str) -> Any:
    U = rbac.user_model
    return rbac.db.session.scalar(sa.select(U).where(sa.func.lower(U.email) == email.lower()))


def membership_of(rbac: RBACProtocol, workspace_id: int, user_id: Any) -> Any:
    M = rbac.models.Membership
    return rbac.db.session.scalar(sa.select(M).where(M.workspace_id == workspace_id,
                                                     M.user_id == user_id))


def set_password(user: Any, password: str) -> None:
    setter = getattr(user, "set_password", None)
    if setter is None:
        raise ValidationError("this application's users have no password to set",
                              field="password")
    setter(password)


def has_password(user: Any) -> bool:
    """Return whether ``user`` can already sign in with a password.

    The host says so through ``user.has_usable_password`` (a bool or a
    method); otherwise a non-empty ``password_hash`` counts. A user model with
    neither is taken to have one, so that an invitation never sets the
    password of an account that signs in some other way.
    """
    usable = getattr(user, "has_usable_password", None)
    if usable is not None:
        return bool(usable() if callable(usable) else usable)
    if hasattr(user, "password_hash"):
        return bool(user.password_hash)
    return True
