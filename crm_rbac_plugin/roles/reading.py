"""Read roles: effective matrices, side-by-side comparison, who holds a permission,
and a preview of what a change gives or takes from each member."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import current_app

from .. import conditions
from ..loader import load_access, membership_row
from ..policy import Access
from .grants import SCOPE_RANK, GrantSpec, effective_specs

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def matrix(rbac: RBACProtocol, role: Any) -> dict[str, dict[str, GrantSpec]]:
    """A role's effective allows as ``{resource: {action: spec}}`` (widest wins)."""
    out: dict[str, dict[str, GrantSpec]] = {}
    for spec in effective_specs(role):
        if spec.effect != "allow":
            continue
        current = out.setdefault(spec.resource, {}).get(spec.action)
        if current is None or SCOPE_RANK[spec.scope] > SCOPE_RANK[current.scope]:
            out[spec.resource][spec.action] = spec
    return out


def compare(rbac: RBACProtocol, roles: Sequence[Any], filter_text: str = "") -> list[dict[str, Any]]:
    """Rows of a side-by-side comparison: one per permission, a cell per role.

    Each row is ``{"permission", "cells": [text or None], "differs": bool}``.
    """
    matrices = [matrix(rbac, r) for r in roles]
    rows = []
    for res in rbac.registry:
        for action in res.actions:
            permission = f"{res.name}.{action}"
            if filter_text and filter_text.lower() not in permission:
                continue
            cells = []
            for role, mx in zip(roles, matrices, strict=True):
                if role.is_owner:
                    cells.append("all")
                    continue
                spec = mx.get(res.name, {}).get(action)
                cells.append(None if spec is None else spec.scope + (
                    f" where {conditions.describe(spec.condition)}" if spec.condition else ""))
            if any(cells):
                rows.append({"permission": permission, "cells": cells,
                             "differs": len(set(cells)) > 1})
    return rows


def roles_granting(rbac: RBACProtocol, workspace_id: int, permission: str) -> list[Any]:
    """Roles of a workspace that allow ``permission`` (directly or inherited)."""
    resource, _, action = permission.rpartition(".")
    rbac.registry.check_action(resource, action)
    Role = rbac.models.Role
    roles = rbac.db.session.scalars(sa.select(Role).where(Role.workspace_id == workspace_id)
                                    .order_by(Role.id))
    return [r for r in roles if r.is_owner or action in matrix(rbac, r).get(resource, {})]


def summary(access: Access | None, rbac: RBACProtocol) -> dict[str, str]:
    """Each permission of ``access`` with the widest scope it reaches.

    Conditions and denies show as a suffix, so a change to them is visible in
    a preview even when the scope stays the same.
    """
    out: dict[str, str] = {}
    if access is None or not access.active:
        return out
    for res in rbac.registry:
        for action in res.actions:
            if access.is_owner:
                out[f"{res.name}.{action}"] = "all"
                continue
            allows, denies = access.rules_for(res.name, action)
            if not allows:
                continue
            best = max(allows, key=lambda r: SCOPE_RANK[r.scope])
            text = best.scope
            if best.conditions:
                text += f" where {conditions.describe(best.conditions)}"
            if denies:
                text += " (with denies)"
            out[f"{res.name}.{action}"] = text
    return out


def preview(rbac: RBACProtocol, role: Any, apply: Any) -> list[dict[str, Any]]:
    """Show which members would gain or lose which permission.

    ``apply()`` makes the change on ``role`` (e.g. a call to
    :func:`.editing.update_role`); it runs inside a SAVEPOINT that is always rolled
    back, and every holder of the role or of a role inheriting from it is
    resolved before and after, exactly as the live policy would.
    """
    session = rbac.db.session
    m = rbac.models
    affected_roles = {role.id}
    changed = True
    while changed:
        children = set(session.scalars(sa.select(m.Role.id).where(
            m.Role.parent_id.in_(affected_roles))))
        changed = not children <= affected_roles
        affected_roles |= children
    member_ids = list(session.scalars(sa.select(m.MemberRole.membership_id).where(
        m.MemberRole.role_id.in_(affected_roles)).distinct()))

    def snapshot() -> dict[int, dict[str, str]]:
        out = {}
        for mid in member_ids:
            row = membership_row(session, m, membership_id=mid)
            access = load_access(session, m, rbac.registry, current_app.config, row)
            out[mid] = summary(access, rbac)
        return out

    before = snapshot()
    nested = session.begin_nested()
    try:
        apply()
        session.flush()
        after = snapshot()
    finally:
        nested.rollback()
    result = []
    for mid in member_ids:
        old, new = before[mid], after[mid]
        gained = sorted(f"{p} [{new[p]}]" for p in new if old.get(p) != new[p])
        lost = sorted(f"{p} [{old[p]}]" for p in old if new.get(p) != old[p])
        if gained or lost:
            membership = session.get(m.Membership, mid)
            result.append({"membership_id": mid, "member": membership.display_name,
                           "gained": gained, "lost": lost})
    return result
