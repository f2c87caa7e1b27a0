"""Roles given to a group of members: a department holds roles for everyone in it.

A :class:`DepartmentRole` gives its role to every member of the department
while they belong to it; moving a member out takes the role away with no
other write. The row carries its workspace so that the flush guard bumps the
right ``policy_version`` without loading the department.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column, relationship

from .base import fk, ix, pk, uq, utcnow


def define_group_models(db: Any, Workspace: Any, Department: Any, Role: Any) -> Any:
    """Create ``DepartmentRole``, a role held by every member of a department."""

    class DepartmentRole(db.Model):  # type: ignore[name-defined,misc]
        """A role held by the members of a department while they belong to it."""

        __tablename__ = "rbac_department_role"
        __table_args__ = (pk("rbac_department_role", "id"),
                          uq("rbac_department_role", "workspace_id", "department_id", "role_id"),
                          ix("rbac_department_role", "role_id"),
                          )
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_department_role.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        department_id: Mapped[int] = mapped_column(
            fk("rbac_department_role.department_id", "rbac_department.id", ondelete="CASCADE"))
        role_id: Mapped[int] = mapped_column(
            fk("rbac_department_role.role_id", "rbac_role.id", ondelete="CASCADE"))
        #: When the role is in force for the department's members (see
        #: :mod:`..role_conditions`).
        access_condition: Mapped[dict[str, Any] | None] = mapped_column(sa.JSON)
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

        workspace = relationship(Workspace)
        department = relationship(Department)
        role = relationship(Role)

        def __str__(self) -> str:
            return f"{self.role} via department {self.department}"

    return DepartmentRole
