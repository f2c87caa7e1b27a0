"""The staged CSV import: one per member, workspace and resource.

An upload is kept here between the preview and the commit, so that the
commit imports exactly the file the member previewed, whichever worker
answers. The row is looked up by the member in force (never by an id in the
URL): a member can only ever reach their own staged import.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from crm_rbac_plugin.models import utcnow

from ..extensions import db


class ImportJob(db.Model):  # type: ignore[name-defined,misc]
    """A CSV file staged for import into one resource, with its column mapping."""

    __tablename__ = "import_job"
    __table_args__ = (sa.UniqueConstraint("workspace_id", "user_id", "resource",
                                          name="uq_import_job_member_resource"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    workspace_id: Mapped[int] = mapped_column(
        sa.ForeignKey("rbac_workspace.id", ondelete="CASCADE"))
    user_id: Mapped[int] = mapped_column(sa.ForeignKey("user.id", ondelete="CASCADE"))
    resource: Mapped[str] = mapped_column(sa.String(40))
    filename: Mapped[str] = mapped_column(sa.String(255), default="")
    #: The uploaded file, decoded (it was checked to be UTF-8 CSV when staged).
    content: Mapped[str] = mapped_column(sa.Text)
    #: Field name -> column position, as the member mapped them.
    mapping: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    rows: Mapped[int] = mapped_column(default=0)
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
