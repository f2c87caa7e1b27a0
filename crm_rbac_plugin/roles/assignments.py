"""Who holds which role: giving and taking assignments, and the segregation-of-duties
pairs no member may hold together."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import gate, role_conditions
from ..errors import PermissionDenied, ValidationError
from ..models import utcnow
from ..policy import Access
from ..workspaces import default_expiry
from .duties import refuse_conflicts
from .escalation import (
    is_privileged,
    require,
    require_covered,
    require_member_in_scope,
    require_role_covered,
    same_workspace,
)
from .field_rules import role_field_modes
from .grants import effective_specs
from .invariants import assignments_in_force, ensure_owner_remains, ensure_role_remains
from .locks import lock_for_member_change
from .reach import held_roles, narrowing, reached, refuse_narrowing

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def holders(rbac: RBACProtocol, role: Any) -> list[Any]:
    """Memberships holding ``role`` (any time window)."""
    m = rbac.models
    return list(rbac.db.session.scalars(
        sa.select(m.Membership).join(m.MemberRole).where(m.MemberRole.role_id == role.id)
        .distinct()))


def needs_approval_as_privileged(role: Any) -> bool:
    """What an approval policy's "assigning a privileged role" means: a privileged role
    (:func:`.escalation.is_privileged`)."""
    return is_privileged(role)


def ensure_admin_not_narrowed(rbac: RBACProtocol, membership: Any, role: Any,
                              held: list[Any] | None = None) -> None:
    """Refuse (409) an assignment that would put a deny on an Admin.

    ``003``: Owner and Admin "always have full access". A deny in any role an
    Admin holds (their own or their department's) would narrow them (an
    explicit deny wins over every allow), so rather than apply it silently or
    ignore it silently, the assignment that would combine the two is refused,
    whichever comes second (:mod:`.reach`). ``held``: the member's roles, when
    the caller has read them (:func:`.reach.held_roles`).
    """
    held = held_roles(rbac, membership) if held is None else held
    refuse_narrowing(membership, narrowing(held, [role]))


def grants_fingerprint(role: Any) -> str:
    """A digest of what ``role`` gives its holders: its effective grants (scopes, effects
    and record conditions included), its field rules, its own condition and whether it
    is a full-access role.

    A request to give a privileged role keeps it, and the approval replays the
    role only while the digest is unchanged: the approvers approve the access
    as it stood when asked, never a role widened while the request waited.
    """
    specs = sorted(json.dumps([s.resource, s.action, s.scope, s.effect, repr(s.condition)])
                   for s in effective_specs(role))
    modes = sorted(f"{resource}.{name}={mode}"
                   for (resource, name), mode in role_field_modes(role).items())
    body = json.dumps({"specs": specs, "fields": modes, "condition": role.access_condition,
                       "owner": bool(role.is_owner), "builtin": [role.builtin, role.key]},
                      sort_keys=True, default=str)
    return hashlib.sha256(body.encode()).hexdigest()


def assign_role(rbac: RBACProtocol, actor: Access | None, membership: Any, role: Any, *,
                starts_at: dt.datetime | None = None,
                expires_at: dt.datetime | None = None, condition: Any = None) -> Any:
    """Give a member a role, optionally only between two UTC instants and only while
    ``condition`` holds (weekdays, hours, networks: see :mod:`..role_conditions`).

    A role with a default expiry (``RBAC_ROLE_DEFAULT_EXPIRY_DAYS``: the Guest)
    given without one ends that many days after it starts.
    """
    cond = condition_for(role, condition)
    actor = require(rbac, actor, "members", "edit")
    same_workspace(actor, membership, role)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own roles.")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can give the {role.name} role.")
    require_member_in_scope(actor, "edit", membership)
    lock_for_member_change(rbac, membership)
    held = held_roles(rbac, membership)
    ensure_admin_not_narrowed(rbac, membership, role, held)
    if expires_at is None:
        expires_at = default_expiry(role, starts_at)
    require_role_covered(actor, role, f"give {role.name}")
    if starts_at and expires_at and expires_at <= starts_at:
        raise ValidationError("the assignment must end after it starts", field="expires_at")
    if expires_at is not None and expires_at <= utcnow():
        raise ValidationError("the expiry is in the past", field="expires_at")
    if role.is_owner and expires_at is not None:
        raise ValidationError("the Owner role cannot be time-limited", field="expires_at")
    # An assignment not in force (expired, or starting later) gives nothing now:
    # the role may be given from now on.
    in_force_now = {mr.role_id for mr in assignments_in_force(membership)}
    if role.id in in_force_now and starts_at is None and expires_at is None and not cond:
        raise ValidationError(f"{membership.display_name} already holds {role.name}",
                              field="role_id")
    refuse_conflicts(rbac, membership, [role], held)
    if needs_approval_as_privileged(role):
        # A pending membership is an invitation's: its role cannot be replayed alone.
        gate.require(rbac, actor, "assign_privileged_role",
                     {"membership_id": membership.id, "role_id": role.id,
                      "starts_at": starts_at, "expires_at": expires_at,
                      "condition": cond.to_json(), "role_grants": grants_fingerprint(role)},
                     summary=f"Give {role.name} to {membership.display_name}",
                     refusal=(f"Giving {role.name} needs approval in this workspace: invite "
                              "with another role, then give it once they joined.", "roles")
                     if membership.status == "pending" else None)
    mr = rbac.models.MemberRole(membership=membership, role=role, starts_at=starts_at,
                                expires_at=expires_at, access_condition=cond.to_json())
    rbac.db.session.add(mr)
    rbac.db.session.flush()
    return mr


def condition_for(role: Any, raw: Any) -> role_conditions.Condition:
    """Validate a condition for ``role``: the Owner role is never conditional.

    An Owner outside a window or a network would lock the workspace's only
    unconditional administrator out; a 400 naming ``condition`` instead.
    """
    cond = role_conditions.validate(raw)
    if cond and role.is_owner:
        raise ValidationError("the Owner role cannot depend on days, hours or networks",
                              field="condition")
    return cond


def set_assignment_condition(rbac: RBACProtocol, actor: Access | None, member_role: Any,
                             condition: Any) -> Any:
    """Replace one assignment's condition (None or {} removes it).

    The same checks as giving the role: an actor who could not give it, or
    who does not manage the member, cannot change when it applies (loosening
    a condition widens access, tightening it narrows someone else's).
    """
    actor = require(rbac, actor, "members", "edit")
    membership, role = member_role.membership, member_role.role
    same_workspace(actor, membership)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own roles.")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can change the {role.name} role's assignments.")
    require_member_in_scope(actor, "edit", membership)
    require_role_covered(actor, role, f"change {role.name}")
    new = condition_for(role, condition).to_json()
    if new != member_role.access_condition and needs_approval_as_privileged(role):
        # Loosening the condition widens a privileged grant an approver saw with it.
        gate.require(rbac, actor, "assign_privileged_role", {}, refusal=(
            f"Changing when {membership.display_name} holds {role.name} needs approval in "
            "this workspace: take the role away and give it again with the new condition.",
            "condition"))
    member_role.access_condition = new
    rbac.db.session.flush()
    return member_role


def remove_role(rbac: RBACProtocol, actor: Access | None, member_role: Any) -> None:
    """Take a role assignment away, keeping at least one Owner and one role."""
    actor = require(rbac, actor, "members", "edit")
    membership, role = member_role.membership, member_role.role
    same_workspace(actor, membership)
    if membership.id == actor.membership_id and not actor.is_owner:
        raise PermissionDenied("You cannot change your own roles.")
    if is_privileged(role) and not actor.is_owner:
        raise PermissionDenied(f"Only an Owner can take the {role.name} role away.")
    require_member_in_scope(actor, "edit", membership)
    require_covered(actor, effective_specs(role), f"take {role.name} away")
    lock_for_member_change(rbac, membership, member_role)
    ensure_role_remains(membership, excluding_member_role=member_role.id)
    if role.is_owner:
        ensure_owner_remains(rbac, membership.workspace_id, excluding_member_role=member_role.id)
    rbac.db.session.delete(member_role)
    rbac.db.session.flush()


def add_conflict(rbac: RBACProtocol, actor: Access | None, role_a: Any, role_b: Any) -> Any:
    """Declare two roles that no member may hold together."""
    actor = require(rbac, actor, "roles", "manage")
    same_workspace(actor, role_a, role_b)
    if role_a.id == role_b.id:
        raise ValidationError("a role cannot conflict with itself", field="role_b_id")
    both = ({m.id for m in reached(rbac, role_a)} & {m.id for m in reached(rbac, role_b)})
    if both:
        raise ValidationError(f"{len(both)} member(s) already hold both roles", field="role_b_id")
    a, b = sorted([role_a, role_b], key=lambda r: r.id)
    conflict = rbac.models.RoleConflict(workspace_id=actor.workspace_id, role_a=a, role_b=b)
    rbac.db.session.add(conflict)
    rbac.db.session.flush()
    return conflict


def remove_conflict(rbac: RBACProtocol, actor: Access | None, conflict: Any) -> None:
    """Drop a segregation-of-duties pair (needs ``roles.manage``, as adding one)."""
    actor = require(rbac, actor, "roles", "manage")
    same_workspace(actor, conflict)
    rbac.db.session.delete(conflict)
    rbac.db.session.flush()
