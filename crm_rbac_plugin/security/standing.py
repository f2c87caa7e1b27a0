"""Who may act on a member's *account*, beyond the member's place in one workspace.

Some actions on a member reach the whole account, in every workspace it
belongs to: resetting its MFA (the credential is the account's), signing it
out everywhere, and showing its MFA status or its number of live sessions.
A workspace's Owner or Admin may do them only within that standing:

* The target membership is **active**. A pending invitation is not
  consent: anyone can create a workspace and invite any address, so an
  invitation gives the inviting workspace no power over (and no view of)
  the account. A deactivated membership gives none either.
* An account that holds the **Owner** role of *another* workspace is
  protected there as it is here: its MFA is reset, and it is signed out
  everywhere, only by someone who is an Owner of each such workspace
  (active, the role in effect now and without an access condition). Every
  active membership of the target counts, with any assignment of an Owner
  role, so a role that starts later protects already.

:func:`account_action_refusal` returns the reason an action is refused, or
None; the views answer a refusal with 403 and the services raise it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..models import utcnow

if TYPE_CHECKING:
    from ..interface import RBACProtocol
    from ..policy import Access

__all__ = ["NOT_ACTIVE", "OWNER_ELSEWHERE", "account_action_refusal", "is_active"]

#: Why an account-wide action on a pending or deactivated membership is refused.
NOT_ACTIVE = ("{name} is not an active member of this workspace (status {status}): "
              "account-wide actions apply only to active members.")
#: Why an account-wide action on an Owner of another workspace is refused.
OWNER_ELSEWHERE = ("{name} is an Owner of another workspace where you are not an Owner: "
                   "only an Owner of every workspace they own can do this.")


def is_active(membership: Any) -> bool:
    """Whether account-wide facts and actions about ``membership`` are this workspace's."""
    return getattr(membership, "status", None) == "active"


def _owned_workspaces(rbac: RBACProtocol, user_id: Any, *, in_effect: bool) -> set[int]:
    """The live workspaces where ``user_id`` is an active member holding an Owner role;
    ``in_effect``: only a role in force now and without an access condition."""
    m = rbac.models
    M, MR, R, W = m.Membership, m.MemberRole, m.Role, m.Workspace
    stmt = (sa.select(M.workspace_id).join(MR, MR.membership_id == M.id)
            .join(R, R.id == MR.role_id).join(W, W.id == M.workspace_id)
            .where(M.user_id == user_id, M.status == "active", R.is_owner.is_(True),
                   W.deleted_at.is_(None)))
    if in_effect:
        now = utcnow()
        stmt = stmt.where(sa.or_(MR.starts_at.is_(None), MR.starts_at <= now),
                          sa.or_(MR.expires_at.is_(None), MR.expires_at > now),
                          MR.access_condition.is_(None))
    return set(rbac.db.session.scalars(stmt))


def account_action_refusal(rbac: RBACProtocol, actor: Access, membership: Any) -> str | None:
    """Why ``actor`` may not act on the account of ``membership`` (see the module), or None.

    The caller checks the actor's right in its own workspace first (an
    Owner for an MFA reset, ``members.manage`` for a sign-out).
    """
    name = getattr(membership, "display_name", None) or f"member #{membership.id}"
    if not is_active(membership):
        return NOT_ACTIVE.format(name=name, status=membership.status)
    if membership.user_id == actor.user_id:
        return None
    protected = _owned_workspaces(rbac, membership.user_id, in_effect=False)
    protected.discard(membership.workspace_id)
    if protected and not protected <= _owned_workspaces(rbac, actor.user_id, in_effect=True):
        return OWNER_ELSEWHERE.format(name=name)
    return None
