"""The workspace's plan: which modules its roles reach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .. import gate
from ..config import setting
from ..errors import PermissionDenied, ValidationError
from ..policy import Access

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def set_plan(rbac: RBACProtocol, actor: Access | None, workspace: Any, plan: Any) -> None:
    """Change the workspace's plan (Owner only); grants are kept as they are.

    A plan only gates modules at decision time, so moving to a smaller plan
    and back restores every role exactly.
    """
    if actor is None or not actor.active or not actor.is_owner:
        raise PermissionDenied("Only an Owner can change the workspace's plan.",
                               resource="settings", action="manage")
    if workspace.id != actor.workspace_id:
        raise PermissionDenied("That belongs to another workspace.")
    if not isinstance(plan, str) or plan not in setting("RBAC_PLANS"):
        raise ValidationError(f"unknown plan {plan!r}", field="plan")
    if plan != workspace.plan:
        gate.require(rbac, actor, "plan", {"plan": plan},
                     summary=f"Change the plan from {workspace.plan} to {plan}")
    workspace.plan = plan
    rbac.db.session.flush()
