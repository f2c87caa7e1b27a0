"""Segregation of duties: pairs of roles no member holds together, however they hold them.

A member holds a role directly, through their department, or through a role
inheriting from it (a child role carries its parents' grants). So the pairs
are checked against the *ancestry* of every role reaching the member
(:func:`.reach.held_roles`, each with its parents), on each change that can
bring a pair together: giving a role to a member or a department, moving a
member into a department, re-parenting a role, and declaring a pair.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..errors import PermissionDenied
from .grants import ancestry
from .reach import held_roles, lineage, reached

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def conflicting(rbac: RBACProtocol, given: Iterable[Any], held: Iterable[Any]) -> list[str]:
    """The declared pairs one role of ``given``'s ancestry and one of ``held``'s would
    form, as "A and B" (empty when none)."""
    given_roles = [r for role in given for r in ancestry(role)]
    held_ids = {r.id for role in held for r in ancestry(role)}
    given_ids = {r.id for r in given_roles}
    if not given_ids or not held_ids:
        return []
    RC = rbac.models.RoleConflict
    pairs = rbac.db.session.scalars(sa.select(RC).where(
        sa.or_(RC.role_a_id.in_(given_ids), RC.role_b_id.in_(given_ids))))
    found = []
    for pair in pairs:
        for mine, other in ((pair.role_a, pair.role_b), (pair.role_b, pair.role_a)):
            if mine.id in given_ids and other.id in held_ids and other.id not in given_ids:
                found.append(f"{mine.name} and {other.name}")
    return sorted(set(found))


def check_reparented(rbac: RBACProtocol, role: Any) -> None:
    """Refuse a new parent of ``role`` (already set on it) that would join a declared
    pair for a member ``role`` reaches, with a role they hold besides ``role``'s line."""
    line = {r.id for r in lineage(rbac, role)}
    for member in reached(rbac, role):
        others = [r for r in held_roles(rbac, member) if r.id not in line]
        refuse_conflicts(rbac, member, [role], others, f" through {role.name}")


def refuse_conflicts(rbac: RBACProtocol, who: Any, given: Iterable[Any], held: Iterable[Any],
                     how: str = "") -> None:
    """Refuse (403) bringing ``given`` to member ``who``, who holds ``held``, when that
    would join a declared pair; ``how`` says how they would get it."""
    clash = conflicting(rbac, given, held)
    if clash:
        raise PermissionDenied(
            f"{who.display_name} would hold {'; '.join(clash)}{how}, which cannot be held "
            "together (segregation of duties).")
