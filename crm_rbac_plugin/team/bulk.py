"""Bulk member changes: one role, department or status change for many members, all or none.

Each member goes through the very service a single change uses
(:func:`..roles.assign_role`, :func:`..roles.remove_role`,
:func:`.departments.set_department`, :func:`.lifecycle.deactivate`,
:func:`.lifecycle.reactivate`), so the same rules hold: nobody grants beyond
their own rights, only an Owner changes an Owner or an Admin, the last Owner
stays, a member does not change their own roles or status. The services
audit each change as they do for one member.

Every member is tried even after a refusal, so the answer names *every*
member refused and why; then :class:`BulkRefused` (409) or
:class:`~..errors.PermissionDenied` (403, when any refusal is a missing
right) is raised and the caller rolls the whole change back. A member already
in the wanted state (holds the role, is in the department, is already
inactive) is left as is: there is nothing to refuse.

A role whose giving waits for approval (the workspace's policy names
"assigning a privileged role") is given to one member per request: a bulk
change of several members would record the first member's request and
stop there, so it is refused (409) before anyone is tried, naming the way
that works.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from .. import gate, roles
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from .checks import require, same_workspace
from .departments import set_department
from .lifecycle import deactivate, reactivate

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["BULK_ACTIONS", "BulkRefused", "bulk_change"]

#: What a bulk change does to each selected member.
BULK_ACTIONS: tuple[str, ...] = ("add_role", "remove_role", "department", "deactivate",
                                 "reactivate")


class BulkRefused(ValidationError):
    """Some selected members may not be changed; nothing was (a 409)."""

    status = 409


@dataclass(frozen=True)
class _Change:
    rbac: RBACProtocol
    actor: Access
    action: str
    target: Any

    def apply(self, membership: Any) -> bool:
        """Change one member; return whether anything changed."""
        rbac, actor, target = self.rbac, self.actor, self.target
        if self.action == "add_role":
            if any(mr.role_id == target.id for mr in roles.assignments_in_force(membership)):
                return False
            roles.assign_role(rbac, actor, membership, target)
        elif self.action == "remove_role":
            held = [mr for mr in membership.member_roles if mr.role_id == target.id]
            for mr in held:
                roles.remove_role(rbac, actor, mr)
            return bool(held)
        elif self.action == "department":
            if membership.department_id == (target.id if target is not None else None):
                return False
            set_department(rbac, actor, membership, target)
        elif self.action == "deactivate":
            if membership.status == "inactive":
                return False
            deactivate(rbac, actor, membership)
        else:
            if membership.status == "active":
                return False
            reactivate(rbac, actor, membership)
        return True


def bulk_change(rbac: RBACProtocol, actor: Access | None, memberships: Sequence[Any],
                action: str, target: Any = None) -> int:
    """Apply ``action`` to every membership or to none; return how many changed.

    ``target`` is the role of ``add_role``/``remove_role`` and the department
    (or None) of ``department``. Raises :class:`BulkRefused` or
    :class:`~..errors.PermissionDenied` naming each refused member; the caller
    rolls back what the members before the refusal changed.
    """
    actor = require(rbac, actor, "members", "edit")
    if action not in BULK_ACTIONS:
        raise ValidationError(f"action must be one of {', '.join(BULK_ACTIONS)}", field="action")
    if not memberships:
        raise ValidationError("select at least one member", field="members")
    if action in ("add_role", "remove_role") and target is None:
        raise ValidationError("choose a role", field="role")
    same_workspace(actor, *memberships, *([target] if target is not None else []))
    if (action == "add_role" and len(memberships) > 1
            and roles.needs_approval_as_privileged(target)):
        gate.require(rbac, actor, "assign_privileged_role",
                     {"role_id": target.id, "membership_ids": [m.id for m in memberships]},
                     summary=f"Give {target.name} to {len(memberships)} members",
                     refusal=(f"Giving {target.name} needs approval in this workspace, one "
                              "request per member: give it to the members one by one.",
                              "role_id"))
    change = _Change(rbac, actor, action, target)
    refusals: list[str] = []
    denied = False
    changed = 0
    for membership in memberships:
        try:
            changed += change.apply(membership)
        except (PermissionDenied, ValidationError) as exc:
            denied = denied or isinstance(exc, PermissionDenied)
            refusals.append(f"{membership.display_name}: {exc.message}")
    if refusals:
        message = "Nothing changed. " + "; ".join(refusals)
        raise PermissionDenied(message, field="members") if denied else BulkRefused(
            message, field="members")
    return changed
