"""The attachments table (used by :mod:`crm_rbac_plugin.files`).

``rbac_attachment`` holds one file attached to a protected record: which
record (``resource`` and ``record_id``, the record's primary key as text so
integer and UUID keys both fit), the generated ``storage_key`` under which
the bytes are stored, the sanitised name shown to people, the sniffed
content type and the size. The bytes never live in the database.

The row grants nothing by itself: every right on an attachment is computed
from its parent record when it is used (see :mod:`crm_rbac_plugin.files.access`),
so reassigning the record or sharing it moves its files along with no copy.
``workspace_id`` is the parent's workspace; deleting the workspace deletes
the rows (``ON DELETE CASCADE``) and the ``workspace_purging`` receiver the
stored bytes. Not a policy table: changing it changes nobody's access.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from .base import NEVER_REUSED, fk, ix, pk, uq, utcnow


def define_file_models(db: Any) -> tuple[Any, ...]:
    """Create ``Attachment`` on ``db.Model``; returns ``(Attachment,)``."""

    class Attachment(db.Model):  # type: ignore[name-defined,misc]
        """One file attached to one protected record."""

        __tablename__ = "rbac_attachment"
        __table_args__ = (pk("rbac_attachment", "id"),
                          uq("rbac_attachment", "storage_key"),
                          ix("rbac_attachment", "resource", "record_id", key="record"),
                          ix("rbac_attachment", "workspace_id"), NEVER_REUSED)
        id: Mapped[int] = mapped_column(primary_key=True)
        workspace_id: Mapped[int] = mapped_column(
            fk("rbac_attachment.workspace_id", "rbac_workspace.id", ondelete="CASCADE"))
        resource: Mapped[str] = mapped_column(sa.String(80))
        record_id: Mapped[str] = mapped_column(sa.String(64))
        storage_key: Mapped[str] = mapped_column(sa.String(64))
        filename: Mapped[str] = mapped_column(sa.String(255))
        content_type: Mapped[str] = mapped_column(sa.String(100))
        size: Mapped[int] = mapped_column(sa.BigInteger)
        uploaded_by_membership_id: Mapped[int | None] = mapped_column()
        uploaded_by_name: Mapped[str] = mapped_column(sa.String(255), default="")
        created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)

    return (Attachment,)
