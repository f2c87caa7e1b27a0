"""Who may touch a role: an active member with the permission, in the same workspace,
never granting or changing more than they hold (Owner and Admin are the Owner's alone)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from ..errors import PermissionDenied
from ..policy import Access
from .grants import SCOPE_RANK, GrantSpec

if TYPE_CHECKING:
    from ..interface import RBACProtocol


PRIVILEGED_KEYS = ("owner", "admin")


def covers(actor: Access, spec: GrantSpec) -> bool:
    """Whether ``actor`` holds at least what ``spec`` would grant.

    A deny restricts, so it never escalates. An allow is covered by an allow of
    the actor on the same cell whose scope is at least as wide and whose
    condition (if any) is a subset of the spec's (fewer clauses = more rows),
    provided the actor has no deny on that cell.
    """
    if spec.effect == "deny" or actor.is_owner:
        return True
    allows, denies = actor.rules_for(spec.resource, spec.action)
    if denies:
        return False
    for rule in allows:
        if SCOPE_RANK[rule.scope] >= SCOPE_RANK[spec.scope] and (
                set(rule.conditions) <= set(spec.condition)):
            return True
    return False


def require(rbac: RBACProtocol, actor: Access | None, resource: str, action: str) -> Access:
    """Refuse unless ``actor`` is active and may ``action`` on ``resource``."""
    if actor is None or not actor.active:
        raise PermissionDenied("You are not an active member of this workspace.")
    decision = rbac.decide(actor, action, resource)
    if not decision:
        raise PermissionDenied(f"You may not {action} {resource}: {decision.reason}",
                               resource=resource, action=action)
    return actor


def require_covered(actor: Access, specs: Iterable[GrantSpec], what: str) -> None:
    missing = sorted({s.permission + f" [{s.scope}]" for s in specs if not covers(actor, s)})
    if missing:
        raise PermissionDenied(
            f"You cannot {what}: it grants more than you hold ({', '.join(missing)}).")


def is_privileged(role: Any) -> bool:
    """Owner and Admin: only an Owner gives or takes them; they are never edited."""
    return bool(role.is_owner) or (role.builtin and role.key in PRIVILEGED_KEYS)


def same_workspace(actor: Access, *objects: Any) -> None:
    """Refuse objects of another workspace than the actor's."""
    for obj in objects:
        if obj is not None and obj.workspace_id != actor.workspace_id:
            raise PermissionDenied("That belongs to another workspace.")
