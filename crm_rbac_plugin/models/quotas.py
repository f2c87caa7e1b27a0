"""The quota table: record caps per role and resource.

A cap says "a holder of this role may own at most N records of this
resource" (``001``'s ``maxCustomers``). Seats per plan need no table: they
are configuration (``RBAC_PLAN_SEATS``) counted against the memberships.
A cap changes no decision of the policy, so it is not a policy class: it
is read when a record is created (see :mod:`crm_rbac_plugin.quotas`).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, backref, mapped_column, relationship

from .base import ck, fk, pk, uq


def define_quota_model(db: Any, Role: Any) -> Any:
    """Create ``RoleQuota`` on ``db.Model``."""

    class RoleQuota(db.Model):  # type: ignore[name-defined,misc]
        """At most ``max_records`` records of ``resource`` owned by each holder of ``role``."""

        __tablename__ = "rbac_role_quota"
        __table_args__ = (
            pk("rbac_role_quota", "id"),
            uq("rbac_role_quota", "role_id", "resource"),
            ck("rbac_role_quota", "max_records", "max_records >= 0"),
        )
        id: Mapped[int] = mapped_column(primary_key=True)
        role_id: Mapped[int] = mapped_column(
            fk("rbac_role_quota.role_id", "rbac_role.id", ondelete="CASCADE"))
        resource: Mapped[str] = mapped_column(sa.String(60))
        max_records: Mapped[int] = mapped_column()

        role = relationship(Role, backref=backref("quotas", cascade="all, delete-orphan",
                                                  order_by=lambda: RoleQuota.resource))

    return RoleQuota
