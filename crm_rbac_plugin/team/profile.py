"""Profile: a member edits their own name, password and notifications.

Never roles or status: those change only through the services that check the
actor's rights (:mod:`.lifecycle`, :mod:`..roles`).

The current password a new one needs is checked as a sign-in checks it
(``rbac.auth``, :mod:`..security.auth`): a wrong one counts a failure of the
account and of the client's IP and is audited ``auth.failed``; while the
account or the IP waits, the password is not checked and the answer is a 429
(``auth.throttled``). A stolen session is thus no faster a password oracle
than the sign-in page.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..security import (
    SignInGuard,
    password_rules_for_user,
    require_password,
    user_inputs_of,
)
from .checks import set_password

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["update_profile"]


def update_profile(rbac: RBACProtocol, membership: Any, *, name: str | None = None,
                   notify_email: bool | None = None, current_password: str | None = None,
                   new_password: str | None = None) -> None:
    """A member edits their own name, password and notifications (never roles or status)."""
    user = membership.user
    if new_password:  # first: the throttle commits its count, and nothing else may be pending
        _check_current_password(rbac, user, current_password or "")
        if new_password == current_password:  # a change that changes nothing ends no exposure
            raise ValidationError("This is your current password: choose a new one.",
                                  field="new_password")
    if name is not None:
        if not name.strip() or len(name.strip()) > 120:
            raise ValidationError("enter a name of 1 to 120 characters", field="name")
        if hasattr(user, "name"):
            user.name = name.strip()
    if new_password:
        # The strictest password rules of the member's workspaces.
        require_password(new_password, field="new_password", user_inputs=user_inputs_of(user, name),
                         policy=password_rules_for_user(rbac, membership.user_id))
        set_password(user, new_password)
    if notify_email is not None:
        membership.notify_email = bool(notify_email)
    rbac.db.session.flush()


def _guard(rbac: RBACProtocol) -> SignInGuard:
    """The extension's sign-in guard (its clock is the one tests control)."""
    guard = getattr(rbac, "auth", None)
    return guard if isinstance(guard, SignInGuard) else SignInGuard(rbac)


def _check_current_password(rbac: RBACProtocol, user: Any, password: str) -> None:
    """Refuse a wrong current password as a failed sign-in (see the module); the throttle's
    rows and audit events are committed even though the caller rolls back."""
    _guard(rbac).confirm_password(user, password, field="current_password",
                                  wrong="your current password is not correct")
