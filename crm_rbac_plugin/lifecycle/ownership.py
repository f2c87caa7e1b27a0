"""Ownership transfer in one step: the Owner hands the workspace to an active member.

The Owner confirms who they are at the moment of the transfer: with their
password, or, when their account has two-factor authentication, with a
fresh MFA check (a password alone would then be the weaker factor). In one
transaction the member gets the Owner role and the old Owner gets Admin in
place of Owner, through the role service (:mod:`..roles.assignments`), whose
invariants keep at least one active Owner and whose workspace lock
serialises concurrent owner changes. A pending or inactive member, the
Owner themselves, or a member of another workspace is refused before
anything is written.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import gate, roles, workspaces
from ..audit.events import record
from ..errors import PermissionDenied, RBACError, RuleConflict, ValidationError
from ..inputs import MAX_ID, is_digits
from ..loader import BYPASS
from ..policy import Access
from ..security import SignInGuard
from . import notices

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The form and JSON field naming the member who becomes Owner.
FIELD = "membership_id"


def require_owner(actor: Access | None) -> Access:
    """Refuse anyone but an active Owner of the workspace."""
    if actor is None or not actor.active or not actor.is_owner:
        raise PermissionDenied("Only an Owner can do that.", resource="settings", action="manage")
    return actor


def confirm_identity(rbac: RBACProtocol, user: Any, *, password: str | None,
                     mfa_enrolled: bool, mfa_fresh: bool) -> None:
    """Refuse unless the Owner proved who they are just now.

    An account with two-factor authentication needs a fresh MFA check (the
    step-up window); any other account its password, checked as a sign-in
    checks it (``rbac.auth``): a wrong one counts a failure of the account
    and the IP and is audited ``auth.failed``, and while they wait the answer
    is a 429 without checking it, so a stolen session or token guesses the
    password no faster than the sign-in page.
    """
    if mfa_enrolled:
        if not mfa_fresh:
            raise PermissionDenied("Confirm it is you: enter a code from your authenticator "
                                   "app, then try again.", field="mfa")
        return
    guard = getattr(rbac, "auth", None)
    if not isinstance(guard, SignInGuard):
        guard = SignInGuard(rbac)
    guard.confirm_password(user, password, field="password",
                           wrong="your password is not correct")


def transfer_candidates(rbac: RBACProtocol, actor: Access) -> list[Any]:
    """The active members of the actor's workspace who are not Owners: who may receive it."""
    M = rbac.models.Membership
    members = rbac.db.session.scalars(
        sa.select(M).where(M.workspace_id == actor.workspace_id, M.status == "active",
                           M.id != actor.membership_id).order_by(M.id),
        execution_options=BYPASS)
    return [m for m in members if not _holds_owner(m)]


def _holds_owner(membership: Any) -> bool:
    return any(mr.role.is_owner for mr in roles.assignments_in_force(membership))


def _target(rbac: RBACProtocol, actor: Access, membership_id: Any) -> Any:
    """The member named by ``membership_id``, if they can become Owner; else refuse."""
    if isinstance(membership_id, str) and is_digits(membership_id.strip()):
        membership_id = int(membership_id)
    if (not isinstance(membership_id, int) or isinstance(membership_id, bool)
            or not 0 < membership_id <= MAX_ID):
        raise ValidationError("choose the member who becomes Owner", field=FIELD)
    M = rbac.models.Membership
    target = rbac.db.session.scalar(
        sa.select(M).where(M.id == membership_id, M.workspace_id == actor.workspace_id),
        execution_options=BYPASS)
    if target is None:
        raise ValidationError("no such member in this workspace", field=FIELD)
    if target.id == actor.membership_id:
        raise ValidationError("you are the Owner already: choose another member", field=FIELD)
    if target.status != "active":
        raise ValidationError(f"{target.display_name} is {target.status}: only an active "
                              "member can become Owner", field=FIELD)
    if _holds_owner(target):
        raise ValidationError(f"{target.display_name} is an Owner already", field=FIELD)
    return target


def transfer_ownership(rbac: RBACProtocol, actor: Access | None, membership_id: Any, *,
                       user: Any, password: str | None = None, mfa_enrolled: bool = False,
                       mfa_fresh: bool = False) -> Any:
    """Make member ``membership_id`` the Owner and the acting Owner an Admin, in one step.

    ``user`` is the acting Owner's account, whose ``password`` (or fresh MFA
    check, when ``mfa_enrolled``) confirms the transfer. Audited as
    ``workspace.ownership_transferred``; the Owners and Admins are told, and
    the role service tells both members of their new roles. The caller commits.
    """
    actor = require_owner(actor)
    target = _target(rbac, actor, membership_id)
    confirm_identity(rbac, user, password=password, mfa_enrolled=mfa_enrolled, mfa_fresh=mfa_fresh)
    ws = rbac.db.session.get(rbac.models.Workspace, actor.workspace_id)
    owner_role = workspaces.role_by_key(rbac, ws, "owner")
    try:
        admin_role = workspaces.role_by_key(rbac, ws, "admin")
    except RBACError:
        raise RuleConflict("this workspace has no Admin role for the old Owner to keep",
                           field=FIELD) from None
    # The transfer is one confirmed step: an approval policy on privileged
    # roles refuses it (409) instead of leaving half of it waiting.
    gate.require(rbac, actor, "assign_privileged_role",
                 {"membership_id": target.id, "role_id": owner_role.id},
                 refusal=("giving the Owner role needs approval in this workspace, so "
                          "ownership cannot be transferred in one step", FIELD))
    old = rbac.db.session.get(rbac.models.Membership, actor.membership_id)
    roles.assign_role(rbac, actor, target, owner_role)
    if admin_role.id not in {mr.role_id for mr in roles.assignments_in_force(old)}:
        roles.assign_role(rbac, actor, old, admin_role)
    for mr in list(old.member_roles):
        if mr.role.is_owner:
            roles.remove_role(rbac, actor, mr)
    record(rbac, "workspace.ownership_transferred", workspace_id=ws.id, resource="settings",
           target=ws.name, actor_ids=(actor.user_id, actor.membership_id),
           before={"owner_membership_id": old.id},
           after={"owner_membership_id": target.id}, to=target.display_name,
           previous=old.display_name)
    notices.tell_admins(rbac, ws.id, category="roles", event="workspace.ownership_transferred",
                        summary=f"{old.display_name} transferred the ownership of {ws.name} "
                                f"to {target.display_name}; {old.display_name} is now an Admin.",
                        endpoint="rbac_settings.members", extra=[target.id])
    rbac.db.session.flush()
    return target
