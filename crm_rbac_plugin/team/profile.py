"""Profile: a member edits their own name, password and notifications.

Never roles or status: those change only through the services that check the
actor's rights (:mod:`.lifecycle`, :mod:`..roles`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..errors import ValidationError
from ..security import password_rules_for_user, require_password, user_inputs_of
from .checks import set_password

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["update_profile"]


def update_profile(rbac: RBACProtocol, membership: Any, *, name: str | None = None,
                   notify_email: bool | None = None, current_password: str | None = None,
                   new_password: str | None = None) -> None:
    """A member edits their own name, password and notifications (never roles or status)."""
    user = membership.user
    if name is not None:
        if not name.strip() or len(name.strip()) > 120:
            raise ValidationError("enter a name of 1 to 120 characters", field="name")
        if hasattr(user, "name"):
            user.name = name.strip()
    if new_password:
        check = getattr(user, "check_password", None)
        if check is None or not check(current_password or ""):
            raise ValidationError("your current password is not correct",
                                  field="current_password")
        # The strictest password rules of the member's workspaces.
        require_password(new_password, field="new_password", user_inputs=user_inputs_of(user, name),
                         policy=password_rules_for_user(rbac, membership.user_id))
        set_password(user, new_password)
    if notify_email is not None:
        membership.notify_email = bool(notify_email)
    rbac.db.session.flush()
