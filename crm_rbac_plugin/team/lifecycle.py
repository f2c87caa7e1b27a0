"""Member lifecycle: deactivate, reactivate, and an API token issued to a member.

Both need ``members.edit`` reaching the member (its scope: a Manager's
``team`` reaches the members assigned to them, see
:func:`..roles.escalation.member_in_scope`).

Deactivation is ``Membership.status = "inactive"``: the member's access is
computed per request from that status (and the flush bumps the policy
version), so open sessions and API tokens lose access on their next request.
The member's records stay theirs; :mod:`.reassignment` moves them.
"""

from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any

from .. import roles, tokens
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from .checks import audit_action, privileged, require, same_workspace

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["deactivate", "issue_token", "may_change_status", "reactivate"]


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
