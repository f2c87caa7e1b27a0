"""Columns a host model needs to be a protected resource.

::

    class Lead(WorkspaceMixin, OwnedMixin, db.Model):
        id: Mapped[int] = mapped_column(primary_key=True)

    rbac.register_resource("leads", Lead)

:class:`WorkspaceMixin` adds ``workspace_id``: indexed (every filtered query
tests it) and a foreign key to ``rbac_workspace.id`` named
``fk_<table>_workspace_id``, so migrations can drop or alter it by name on
every database. The plugin fills it from the member's workspace (see
:mod:`.guard`) and never lets a member change it, so its ``info`` carries
``rbac_exclude_from_forms``: the Flask-Admin views of :mod:`.admin` leave
such columns out of their forms, and host forms should too.
:class:`OwnedMixin` adds ``owner_id`` the same way, to the host's user table
named by ``rbac_owner_target``.
"""

from __future__ import annotations

from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, declared_attr, mapped_column

#: ``Column.info`` key marking a column that no form may show or write.
EXCLUDE_FROM_FORMS = "rbac_exclude_from_forms"


def _fk_name(cls: Any, column: str) -> str:
    return f"fk_{cls.__tablename__}_{column}"


class WorkspaceMixin:
    """Add ``workspace_id``, the column that isolates workspaces."""

    @declared_attr
    def workspace_id(cls) -> Mapped[int | None]:  # noqa: N805  (declared_attr takes the class)
        return mapped_column(
            sa.ForeignKey("rbac_workspace.id", name=_fk_name(cls, "workspace_id")),
            index=True, nullable=True, info={EXCLUDE_FROM_FORMS: True})


class OwnedMixin:
    """Add ``owner_id``, the column of the own/team/department scopes.

    Set ``rbac_owner_target`` to the user table's key column when it is not
    ``"user.id"``.
    """

    rbac_owner_target: ClassVar[str] = "user.id"

    @declared_attr
    def owner_id(cls) -> Mapped[int | None]:  # noqa: N805
        return mapped_column(
            sa.ForeignKey(cls.rbac_owner_target, name=_fk_name(cls, "owner_id")),
            index=True, nullable=True)


def form_excluded(model: type) -> frozenset[str]:
    """Return the attribute names of ``model``'s columns marked :data:`EXCLUDE_FROM_FORMS`."""
    return frozenset(attr.key for attr in sa.inspect(model).column_attrs
                     if any(col.info.get(EXCLUDE_FROM_FORMS) for col in attr.columns))


__all__ = ["EXCLUDE_FROM_FORMS", "OwnedMixin", "WorkspaceMixin", "form_excluded"]
