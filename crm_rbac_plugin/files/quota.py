"""Attachment storage per workspace: the bytes a workspace's files may take.

``RBAC_FILES_QUOTA_BYTES`` is one limit for every workspace, or a mapping
from plan to limit (``"*"``: any other plan); None means no limit. Every
flush that inserts attachment rows is checked, whatever route or job wrote
them (in the system context too: the limit is the plan's, not a member's):
the workspace's row is write-locked (:func:`..locking.write_lock`), so two
uploads to one workspace count one after the other, on PostgreSQL and
SQLite alike, and an upload that would pass the limit is refused with a
409 naming the ``file`` field before any byte is stored. A file on a record
shared by another workspace takes that workspace's storage, as the record
is its own.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from ..config import setting
from ..errors import ConfigurationError
from ..locking import write_lock
from .content import FileRejected

if TYPE_CHECKING:
    from ..interface import RBACProtocol


@dataclass(frozen=True)
class StorageUsage:
    """A workspace's attachment bytes: ``limit`` None means its plan has none."""

    plan: str
    used: int
    limit: int | None


def quota_for(plan: str) -> int | None:
    """The bytes ``plan`` allows (``RBAC_FILES_QUOTA_BYTES``); None: no limit."""
    value = setting("RBAC_FILES_QUOTA_BYTES")
    if isinstance(value, Mapping):
        value = value.get(plan, value.get("*"))
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigurationError("RBAC_FILES_QUOTA_BYTES: a number of bytes (0 or more), None, "
                                 f"or a mapping of plan to one; got {value!r}")
    return value


def _used(rbac: RBACProtocol, session: Session, workspace_id: int) -> int:
    A = rbac.models.Attachment.__table__
    return int(session.connection().execute(
        sa.select(sa.func.coalesce(sa.func.sum(A.c.size), 0)).where(
            A.c.workspace_id == workspace_id)).scalar_one())


def storage_usage(rbac: RBACProtocol, workspace: Any) -> StorageUsage:
    """The bytes ``workspace``'s attachments take and its plan's limit (for the plan page)."""
    return StorageUsage(workspace.plan, _used(rbac, rbac.db.session, workspace.id),
                        quota_for(workspace.plan))


def check_storage(rbac: RBACProtocol, session: Session, flush_context: Any,
                  instances: Any) -> None:
    """Refuse (409, field ``file``) a flush whose new attachments would take a
    workspace past its plan's storage."""
    model = rbac.models.Attachment
    adding: dict[int, int] = {}
    for obj in session.new:
        if isinstance(obj, model) and obj.workspace_id is not None:
            adding[obj.workspace_id] = adding.get(obj.workspace_id, 0) + int(obj.size or 0)
    W = rbac.models.Workspace
    for workspace_id, size in sorted(adding.items()):
        with session.no_autoflush:
            plan = session.scalar(sa.select(W.plan).where(W.id == workspace_id))
        limit = quota_for(plan) if plan is not None else None
        if limit is None:
            continue
        write_lock(session, W, W.id == workspace_id)
        used = _used(rbac, session, workspace_id)
        if used + size > limit:
            raise FileRejected(_full(rbac, workspace_id, plan, limit, used, size), status=409)


def _full(rbac: RBACProtocol, workspace_id: int, plan: str, limit: int, used: int,
          size: int) -> str:
    """Why the file does not fit. A member of another workspace, uploading to a record
    shared with them, is not told the sharing workspace's plan or figures."""
    access = rbac.current_access()
    if access is not None and access.workspace_id != workspace_id:
        return ("The workspace that shares this record has no room left for this file: "
                "ask it to make room.")
    return (f"The workspace's files may take {limit} bytes on the {plan} plan and {used} are "
            f"taken: this file ({size} bytes) does not fit. Delete files or change the plan "
            "first.")
