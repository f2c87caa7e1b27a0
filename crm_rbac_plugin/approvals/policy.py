"""A workspace's approval policy: which operations wait for approval, and who approves.

The policy is one row per workspace (:class:`ApprovalPolicy`); a workspace
without one needs no approval, so the plugin behaves as before until an
Owner names an operation. Only Owners change the policy, and a change to it
waits for approval itself once the policy names ``approval_policy`` (so one
Owner cannot quietly switch approvals off).

``operations`` maps an operation of :data:`.gate.OPERATIONS` to a threshold:
the counted ones (exports, bulk deletes) wait when they touch more than that
many rows, the others whenever they are named (threshold 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import gate
from ..audit import events as audit_events
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..policy import Access
from ..roles.escalation import APPROVERS_KEY

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: Bounds of the policy's numbers (a value outside is a 400 naming the field).
MAX_THRESHOLD = 10_000_000
EXPIRY_HOURS = (1, 720)
APPROVALS = (1, 2)
FIELDS = frozenset({"operations", "approvals_required", "approver_permission", "expiry_hours"})


@dataclass(frozen=True)
class Settings:
    """A workspace's approval policy as plain values (the defaults: nothing needs approval)."""

    operations: dict[str, int] = field(default_factory=dict)
    approvals_required: int = 1
    approver_permission: str = "approvals.decide"
    expiry_hours: int = 72

    def threshold(self, operation: str) -> int | None:
        """The operation's threshold, or None when it needs no approval."""
        value = self.operations.get(operation)
        return None if value is None else int(value)

    def needs(self, operation: str, count: int | None) -> bool:
        """Whether ``operation`` (touching ``count`` rows, when counted) waits for approval."""
        limit = self.threshold(operation)
        if limit is None:
            return False
        if operation in gate.COUNTED:
            return count is not None and count > limit
        return True

    def to_json(self) -> dict[str, Any]:
        return {"operations": dict(self.operations), "approvals_required": self.approvals_required,
                "approver_permission": self.approver_permission, "expiry_hours": self.expiry_hours}


def row_of(rbac: RBACProtocol, workspace_id: int) -> Any:
    """The workspace's policy row, or None."""
    P = rbac.models.ApprovalPolicy
    return rbac.db.session.scalar(sa.select(P).where(P.workspace_id == workspace_id))


def settings_for(rbac: RBACProtocol, workspace_id: int) -> Settings:
    """The workspace's approval policy (the defaults when it has no row)."""
    row = row_of(rbac, workspace_id)
    if row is None:
        return Settings(approver_permission=setting("RBAC_APPROVAL_PERMISSION"),
                        expiry_hours=setting("RBAC_APPROVAL_EXPIRY_HOURS"))
    return Settings(dict(row.operations or {}), row.approvals_required, row.approver_permission,
                    row.expiry_hours)


def _integer(value: Any, name: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise ValidationError(f"{name} must be a whole number from {low} to {high}", field=name)
    return value


def _operations(value: Any) -> dict[str, int]:
    """Check ``{operation: threshold}``: counted operations take 0..MAX, others ``true`` or 0."""
    if not isinstance(value, Mapping):
        raise ValidationError("operations must map operation names to thresholds",
                              field="operations")
    out: dict[str, int] = {}
    for name, threshold in value.items():
        key = f"operations.{name}"
        if name not in gate.OPERATIONS:
            raise ValidationError(f"unknown operation {name!r}; known: "
                                  f"{', '.join(gate.OPERATIONS)}", field=key)
        if threshold is None or threshold is False:
            continue
        if name in gate.COUNTED:
            out[name] = _integer(threshold, key, 0, MAX_THRESHOLD)
        elif threshold is True or threshold == 0 and not isinstance(threshold, bool):
            out[name] = 0
        else:
            raise ValidationError(f"{key} takes true (needs approval) or false", field=key)
    return out


def _permission(rbac: RBACProtocol, value: Any) -> str:
    resource, _, action = str(value or "").rpartition(".")
    if not isinstance(value, str) or resource not in rbac.registry or (
            action not in rbac.registry.get(resource).actions):
        raise ValidationError("approver_permission must be a registered permission such as "
                              "approvals.decide", field="approver_permission")
    return value


def validate(rbac: RBACProtocol, current: Settings, changes: Mapping[str, Any]) -> Settings:
    """Return ``current`` with ``changes`` applied, or a ValidationError naming the field."""
    unknown = sorted(set(changes) - FIELDS)
    if unknown:
        raise ValidationError(f"unknown field {unknown[0]!r}", field=unknown[0])
    values = current.to_json()
    if "operations" in changes:
        values["operations"] = _operations(changes["operations"])
    if "approvals_required" in changes:
        values["approvals_required"] = _integer(changes["approvals_required"],
                                                "approvals_required", *APPROVALS)
    if "expiry_hours" in changes:
        values["expiry_hours"] = _integer(changes["expiry_hours"], "expiry_hours", *EXPIRY_HOURS)
    if "approver_permission" in changes:
        values["approver_permission"] = _permission(rbac, changes["approver_permission"])
    return Settings(**values)


def save(rbac: RBACProtocol, actor: Access | None, changes: Mapping[str, Any]) -> Settings:
    """Change the actor's workspace policy (Owners only; may itself wait for approval)."""
    if actor is None or not actor.active or not actor.is_owner:
        raise PermissionDenied("Only an Owner can change the approval policy.",
                               resource="settings", action="manage")
    current = settings_for(rbac, actor.workspace_id)
    new = validate(rbac, current, changes)
    gate.require(rbac, actor, "approval_policy", {"changes": new.to_json()},
                 summary="Change the approval policy")
    row = row_of(rbac, actor.workspace_id)
    if row is None:
        row = rbac.models.ApprovalPolicy(workspace_id=actor.workspace_id)
        rbac.db.session.add(row)
    row.operations, row.approvals_required = new.operations, new.approvals_required
    row.approver_permission, row.expiry_hours = new.approver_permission, new.expiry_hours
    row.updated_by_membership_id = actor.membership_id
    # Which roles are privileged follows the approver permission: read it afresh.
    rbac.db.session.info.pop(APPROVERS_KEY, None)
    audit_events.record(rbac, "approval_policy.changed", workspace_id=actor.workspace_id,
                        resource="settings", target="approval policy", before=current.to_json(),
                        after=new.to_json())
    rbac.db.session.flush()
    return new
