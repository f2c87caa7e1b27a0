"""Member lifecycle: deactivate, reactivate, and a member's API tokens (issued, revoked).

Both need ``members.edit`` reaching the member (its scope: a Manager's
``team`` reaches the members assigned to them, see
:func:`..roles.escalation.member_in_scope`).

Deactivation is ``Membership.status = "inactive"``: the member's access is
computed per request from that status (and the flush bumps the policy
version), so open sessions and API tokens lose access on their next request.
The member's records stay theirs; :mod:`.reassignment` moves them.

Whoever may deactivate a member also sees their API tokens (names, prefixes
and dates, never a secret) and revokes one (:func:`revoke_member_token`):
the way to cut off a leaked token or an integration without deactivating
the member.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .. import queries, roles, tokens
from ..errors import PermissionDenied, ValidationError
from ..models import utcnow
from ..policy import Access
from .checks import audit_action, privileged, require, same_workspace

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["deactivate", "issue_token", "manageable_tokens", "may_change_status", "reactivate",
           "revoke_member_token"]


def _require_reach(rbac: RBACProtocol, actor: Access, membership: Any, verb: str) -> None:
    """Refuse unless ``actor`` may change the status of ``membership``: an Owner or an Admin
    only when the actor is an Owner, anyone else within the actor's ``members.edit`` scope."""
    if privileged(rbac, membership) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can {verb} an Owner or an Admin.")
    roles.require_member_in_scope(actor, "edit", membership)


def may_change_status(rbac: RBACProtocol, actor: Access | None, membership: Any) -> bool:
    """Whether ``actor`` may deactivate or reactivate ``membership`` (as its status allows).

    The checks of :func:`deactivate` and :func:`reactivate` short of the
    member's current status: a member's page offers the controls only then,
    never a button whose every use is refused.
    """
    if actor is None or not actor.active or membership.id == actor.membership_id:
        return False
    if membership.workspace_id != actor.workspace_id or not rbac.decide(actor, "edit", "members"):
        return False
    try:
        _require_reach(rbac, actor, membership, "change")
    except PermissionDenied:
        return False
    return True


def deactivate(rbac: RBACProtocol, actor: Access | None, membership: Any) -> None:
    """Make a member Inactive: no access from their next request on; records stay theirs."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership)
    if membership.id == actor.membership_id:
        raise PermissionDenied("You cannot deactivate yourself.")
    if membership.status == "pending":
        raise ValidationError("this member has not joined yet; revoke the invitation instead",
                              field="status")
    if membership.status == "inactive":
        raise ValidationError(f"{membership.display_name} is already inactive", field="status")
    _require_reach(rbac, actor, membership, "deactivate")
    roles.ensure_owner_remains(rbac, membership.workspace_id, excluding_membership=membership.id)
    membership.status = "inactive"
    rbac.db.session.flush()
    audit_action(rbac, actor, "member.deactivated", workspace_id=actor.workspace_id,
                 target=membership.display_name, before={"status": "active"},
                 after={"status": "inactive"})


def reactivate(rbac: RBACProtocol, actor: Access | None, membership: Any) -> None:
    """Restore an Inactive member's access (with the roles they held)."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership)
    if membership.status != "inactive":
        raise ValidationError(f"{membership.display_name} is not inactive", field="status")
    _require_reach(rbac, actor, membership, "reactivate")
    membership.status = "active"
    rbac.db.session.flush()
    audit_action(rbac, actor, "member.reactivated", workspace_id=actor.workspace_id,
                 target=membership.display_name, before={"status": "inactive"},
                 after={"status": "active"})


def issue_token(rbac: RBACProtocol, actor: Access | None, membership: Any, name: str,
                expires_at: dt.datetime | None = None) -> tuple[Any, str]:
    """Create an API token for another member: the way an account whose roles do not
    let it sign in (:mod:`..security.signin`) gets one. Only an Owner issues one, since
    the token acts as the member with every right they have. The plaintext is
    returned only now; the event names the member and the token, never its value."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership)
    if not actor.is_owner:
        raise PermissionDenied("Only an Owner issues an API token to a member: it acts as them.")
    token, plaintext = tokens.create_token(rbac, membership, name, expires_at=expires_at)
    audit_action(rbac, actor, "member.token_issued", workspace_id=actor.workspace_id,
                 resource="members", target=membership.display_name,
                 token=token.name, prefix=token.prefix)
    return token, plaintext


def manageable_tokens(rbac: RBACProtocol, actor: Access | None, membership: Any) -> list[Any]:
    """``membership``'s API tokens, newest first, when ``actor`` may manage them (as
    :func:`may_change_status` says: not one's own, which one's own page lists); else none."""
    if not may_change_status(rbac, actor, membership):
        return []
    return queries.member_tokens(rbac, membership.id)


def revoke_member_token(rbac: RBACProtocol, actor: Access | None, membership: Any,
                        token: Any) -> None:
    """Revoke one of another member's API tokens: whoever may deactivate the member may
    (an Owner, an Admin for anyone but Owners and Admins, a Manager for their team).
    Revoking a revoked token changes nothing. Audited ``member.token_revoked`` with the
    token's name and prefix."""
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership)
    if membership.id == actor.membership_id:
        raise PermissionDenied("Revoke your own tokens on your API tokens page.")
    _require_reach(rbac, actor, membership, "revoke the API tokens of")
    if token.membership_id != membership.id:
        raise PermissionDenied("This token is not this member's.")
    if token.revoked_at is not None:
        return
    token.revoked_at = utcnow()
    rbac.db.session.flush()
    audit_action(rbac, actor, "member.token_revoked", workspace_id=actor.workspace_id,
                 resource="members", target=membership.display_name,
                 token=token.name, prefix=token.prefix)
