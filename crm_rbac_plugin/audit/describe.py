"""Name a recorded change: its kind, its target label and its action."""

from __future__ import annotations

from typing import Any

#: Kinds of policy object: (name in actions and targets, audited resource).
KINDS: dict[str, tuple[str, str]] = {
    "Workspace": ("workspace", "settings"),
    "Department": ("department", "members"),
    "Membership": ("member", "members"),
    "ManagerAssignment": ("manager", "members"),
    "Role": ("role", "roles"),
    "Grant": ("grant", "roles"),
    "MemberRole": ("assignment", "members"),
    "FieldRule": ("field_rule", "roles"),
    "RoleConflict": ("sod", "roles"),
    "SharingAgreement": ("agreement", "sharing"),
    "SharingPermission": ("agreement_permission", "sharing"),
    "DepartmentRole": ("department_role", "members"),
}


#: The change that names a transaction's event, most significant first.
PRIORITY: tuple[str, ...] = (
    "sharing.created", "sharing.revoked", "sharing.declined", "sharing.left",
    "sharing.accepted", "sharing.deleted", "sharing.changed",
    "role.created", "role.deleted", "member.removed", "member.added", "member.deactivated",
    "member.reactivated", "assignment.added", "assignment.removed", "assignment.changed",
    "role.changed", "grant.added", "grant.removed", "grant.changed", "field_rule.added",
    "field_rule.removed", "field_rule.changed", "member.changed",
    "manager.changed", "department.changed", "sod.changed", "plan.changed",
    "workspace.changed", "workspace.created",
)


def kind_of(obj: Any) -> tuple[str, str]:
    return KINDS[type(obj).__name__]


def label(kind: str, obj: Any, values: dict[str, Any]) -> str:
    ident = values.get("id")
    if kind == "role":
        return f"role #{ident} {values.get('name')}"
    if kind == "member":
        # A pending member is named by the invited address (Membership.display_name).
        user = getattr(obj, "user", None)
        if user is None:
            return f"member #{ident}"
        name = getattr(user, "email", None) if values.get("status") == "pending" else user
        return f"member #{ident} {name}"
    if kind == "assignment":
        return (f"assignment #{ident} (role #{values.get('role_id')} to member "
                f"#{values.get('membership_id')})")
    if kind == "grant":
        return (f"grant #{ident} {values.get('effect')} {values.get('resource')}."
                f"{values.get('action')} on role #{values.get('role_id')}")
    if kind == "field_rule":
        return (f"field rule #{ident} {values.get('resource')}.{values.get('field')} "
                f"on role #{values.get('role_id')}")
    if kind == "department_role":
        return (f"role #{values.get('role_id')} given to department "
                f"#{values.get('department_id')}")
    if kind == "manager":
        return f"manager #{values.get('manager_id')} of member #{values.get('member_id')}"
    if kind == "agreement":
        return (f"agreement #{ident} workspace #{values.get('granting_workspace_id')} → "
                f"#{values.get('receiving_workspace_id')}")
    if kind == "agreement_permission":
        return (f"shared {values.get('resource')}.{values.get('action')} in agreement "
                f"#{values.get('agreement_id')}")
    if kind in ("department", "workspace"):
        return f"{kind} #{ident} {values.get('name')}"
    return f"{kind} #{ident}"


def change_action(kind: str, op: str, before: dict[str, Any] | None,
                   after: dict[str, Any] | None) -> str:
    if kind == "assignment":
        return {"created": "assignment.added", "deleted": "assignment.removed"}.get(
            op, "assignment.changed")
    if kind == "member":
        if op == "created":
            return "member.added"
        if op == "deleted":
            return "member.removed"
        old, new = (before or {}).get("status"), (after or {}).get("status")
        if old != new and new == "inactive":
            return "member.deactivated"
        if old != new and new == "active" and old == "inactive":
            return "member.reactivated"
        return "member.changed"
    if kind == "role":
        return f"role.{op}"
    if kind in ("grant", "field_rule", "department_role"):
        return f"{kind}." + {"created": "added", "deleted": "removed"}.get(op, "changed")
    if kind == "agreement":
        old, new = (before or {}).get("status"), (after or {}).get("status")
        if op == "changed" and old != new and new in ("active", "declined", "left", "revoked"):
            return "sharing." + {"active": "accepted"}.get(new, new)
        return f"sharing.{op}"
    if kind == "agreement_permission":
        return "sharing.changed"
    if kind == "workspace":
        if op == "created":
            return "workspace.created"
        if (before or {}).get("plan") != (after or {}).get("plan"):
            return "plan.changed"
        return "workspace.changed"
    return f"{kind}.changed"
