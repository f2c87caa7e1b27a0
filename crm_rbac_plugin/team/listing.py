"""The members list: memberships filtered, searched, sorted and paged.

One search text matches a member's email, name, role names and department
name; the facets (status, role, department) narrow further. A pending
member is named by the invited address only (see ``Membership.display_name``),
so their account name is neither searched nor sorted on.

Sorting takes only the keys of :data:`SORT_KEYS`; anything else is the
caller's input error (the pages answer 400). Ties break on the membership
id, so paging is stable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa

from .. import gate
from ..errors import ValidationError
from ..loader import BYPASS
from ..user_keys import user_pk_column

if TYPE_CHECKING:
    from ..interface import RBACProtocol

__all__ = ["SORT_KEYS", "MemberFilter", "count_members", "gate_members_export", "list_members"]

#: The columns the list sorts by, in the order the page shows them.
SORT_KEYS: tuple[str, ...] = ("name", "email", "status", "department", "last_activity")


@dataclass(frozen=True)
class MemberFilter:
    status: str = ""
    role_id: int | None = None
    department_id: int | None = None
    q: str = ""
    sort: str = "name"
    direction: str = "asc"


def _display_name(rbac: RBACProtocol) -> Any:
    """The SQL twin of ``Membership.display_name``: the email until the member joins."""
    U, M = rbac.user_model, rbac.models.Membership
    if not hasattr(U, "name"):
        return sa.func.lower(U.email)
    return sa.func.lower(sa.case((M.status == "pending", U.email), else_=U.name))


def _search(rbac: RBACProtocol, text: str) -> Any:
    m, U = rbac.models, rbac.user_model
    like = f"%{text.strip().lower()}%"
    conds = [sa.func.lower(U.email).like(like),
             m.Membership.id.in_(sa.select(m.MemberRole.membership_id)
                                 .join(m.Role, m.Role.id == m.MemberRole.role_id)
                                 .where(sa.func.lower(m.Role.name).like(like))),
             m.Membership.department_id.in_(sa.select(m.Department.id).where(
                 sa.func.lower(m.Department.name).like(like)))]
    if hasattr(U, "name"):
        # A pending member's account name is not this workspace's to know (it may
        # come from another one): it is searchable only once they have joined.
        conds.append(sa.and_(m.Membership.status != "pending",
                             sa.func.lower(U.name).like(like)))
    return sa.or_(*conds)


def _filtered(rbac: RBACProtocol, workspace_id: int, flt: MemberFilter) -> Any:
    m = rbac.models
    U = rbac.user_model
    stmt = (sa.select(m.Membership).join(U, user_pk_column(rbac) == m.Membership.user_id)
            .outerjoin(m.Department, m.Department.id == m.Membership.department_id)
            .where(m.Membership.workspace_id == workspace_id))
    if flt.status:
        stmt = stmt.where(m.Membership.status == flt.status)
    if flt.department_id is not None:
        stmt = stmt.where(m.Membership.department_id == flt.department_id)
    if flt.role_id is not None:
        stmt = stmt.where(m.Membership.id.in_(sa.select(m.MemberRole.membership_id)
                                              .where(m.MemberRole.role_id == flt.role_id)))
    if flt.q.strip():
        stmt = stmt.where(_search(rbac, flt.q))
    return stmt


def _order(rbac: RBACProtocol, flt: MemberFilter) -> list[Any]:
    """ORDER BY of a sort key; empty values (no department, never seen) sort last."""
    if flt.sort not in SORT_KEYS:
        raise ValidationError(f"sort must be one of {', '.join(SORT_KEYS)}", field="sort")
    if flt.direction not in ("asc", "desc"):
        raise ValidationError("dir must be asc or desc", field="dir")
    m, U = rbac.models, rbac.user_model
    column = {"name": _display_name(rbac), "email": sa.func.lower(U.email),
              "status": m.Membership.status, "department": sa.func.lower(m.Department.name),
              "last_activity": m.Membership.last_seen_at}[flt.sort]
    empty_last = sa.case((column.is_(None), 1), else_=0)
    ordered = column.desc() if flt.direction == "desc" else column.asc()
    return [empty_last, ordered, m.Membership.id]


def list_members(rbac: RBACProtocol, workspace_id: int, flt: MemberFilter | None = None, *,
                 offset: int = 0, limit: int | None = None) -> list[Any]:
    """Memberships of a workspace, filtered and sorted by ``flt``; ``limit`` rows from ``offset``."""
    flt = flt or MemberFilter()
    stmt = _filtered(rbac, workspace_id, flt).order_by(*_order(rbac, flt)).offset(offset)
    if limit is not None:
        stmt = stmt.limit(limit)
    return list(rbac.db.session.scalars(stmt, execution_options=BYPASS))


def count_members(rbac: RBACProtocol, workspace_id: int, flt: MemberFilter | None = None) -> int:
    """How many memberships :func:`list_members` would return without a limit."""
    stmt = _filtered(rbac, workspace_id, flt or MemberFilter()).subquery()
    return int(rbac.db.session.scalar(sa.select(sa.func.count()).select_from(stmt),
                                      execution_options=BYPASS) or 0)


def gate_members_export(rbac: RBACProtocol, access: Any, payload: dict[str, Any], *,
                        count: int, summary: str) -> None:
    """Pass a CSV listing members through the gate ``/settings/members.csv`` passes.

    Every file that takes the member list out of the workspace (the members
    CSV, who-can, a review's report) needs ``members.export`` (403 without)
    and, over the workspace's export threshold, waits for approval
    (:func:`..gate.require`, operation ``export``, resource ``members``);
    ``payload["via"]`` names the producer that makes the file once approved.
    """
    gate.require_export(rbac, access, "members", payload, count=count, summary=summary,
                        what="Exporting members")
