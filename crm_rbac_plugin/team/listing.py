"""The members list: memberships filtered by status, role, department and search."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from ..identity import user_pk_column
from ..loader import BYPASS

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["MemberFilter", "list_members"]


@dataclass(frozen=True)
class MemberFilter:
    status: str = ""
    role_id: int | None = None
    department_id: int | None = None
    q: str = ""


def list_members(rbac: RBACProtocol, workspace_id: int, flt: MemberFilter | None = None) -> list[Any]:
    """Memberships of a workspace filtered by status, role, department and name/email."""
    flt = flt or MemberFilter()
    m = rbac.models
    U = rbac.user_model
    user_pk = user_pk_column(rbac)
    stmt = (sa.select(m.Membership).join(U, user_pk == m.Membership.user_id)
            .where(m.Membership.workspace_id == workspace_id))
    if flt.status:
        stmt = stmt.where(m.Membership.status == flt.status)
    if flt.department_id is not None:
        stmt = stmt.where(m.Membership.department_id == flt.department_id)
    if flt.role_id is not None:
        stmt = stmt.where(m.Membership.id.in_(sa.select(m.MemberRole.membership_id)
                                              .where(m.MemberRole.role_id == flt.role_id)))
    if flt.q:
        like = f"%{flt.q.strip().lower()}%"
        conds = [sa.func.lower(U.email).like(like)]
        if hasattr(U, "name"):
            # A pending member's account name is not this workspace's to know (it may
            # come from another one): it is searchable only once they have joined.
            conds.append(sa.and_(m.Membership.status != "pending",
                                 sa.func.lower(U.name).like(like)))
        stmt = stmt.where(sa.or_(*conds))
    return list(rbac.db.session.scalars(stmt.order_by(m.Membership.id),
                                        execution_options=BYPASS))
