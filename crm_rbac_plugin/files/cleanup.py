"""Keep attachment rows and stored bytes in step with records, workspaces and transactions.

* **Guard.** Every flushed attachment row is judged like a record write: an
  insert needs ``upload`` on its parent (the row takes the parent's
  workspace), a delete needs ``delete`` (unless the parent goes in the same
  flush, whose own delete the record guard judged), and a row never changes.
  Outside the system context nothing else may write them, whatever the route.
* **Records.** Deleting an attachment row removes its bytes once the deletion
  commits. Deleting a record through the ORM deletes its attachment rows
  in the same flush and its bytes once the transaction commits. A Core or
  bulk ``DELETE`` of records is not seen (as by the record guard): such
  code deletes the attachments itself.
* **Workspaces.** The purge sends ``workspace_purging`` inside its
  transaction; the receiver deletes the workspace's attachment rows and
  queues their bytes, removed when the purge commits.
* **Transactions.** Bytes stored by :func:`.service.attach` are removed if
  the transaction rolls back; bytes queued for removal are removed only
  after the commit, so a rolled-back deletion loses no file.
"""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Flask, has_app_context
from sqlalchemy import event
from sqlalchemy.orm import Session

from .. import signals
from ..context import SYSTEM
from ..errors import PermissionDenied
from . import quota
from .access import check, parent_record, record_key, workspace_of
from .storage import storage

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: ``Session.info`` keys: keys stored in this transaction, keys to remove at commit.
STORED = "rbac_files_stored"
DOOMED = "rbac_files_doomed"


def install(rbac: RBACProtocol, db_session: Any) -> None:
    """Listen on the host's session and to the purge (called by ``init_app``)."""
    event.listen(db_session, "before_flush", partial(guard_flush, rbac))
    # After the guard, which gives each new row its parent's workspace.
    event.listen(db_session, "before_flush", partial(quota.check_storage, rbac))
    event.listen(db_session, "after_flush", partial(delete_with_records, rbac))
    event.listen(db_session, "after_commit", after_commit)
    event.listen(db_session, "after_rollback", after_rollback)
    signals.workspace_purging.connect(on_workspace_purging)


def drop_on_rollback(session: Session, key: str) -> None:
    """Remove the bytes under ``key`` if the current transaction rolls back."""
    session.info.setdefault(STORED, set()).add(key)


def drop_on_commit(session: Session, keys: list[str]) -> None:
    """Remove the bytes under ``keys`` once the current transaction commits."""
    session.info.setdefault(DOOMED, set()).update(keys)


def guard_flush(rbac: RBACProtocol, session: Session, flush_context: Any, instances: Any) -> None:
    """Refuse a flush that writes an attachment row the member may not write."""
    model = rbac.models.Attachment
    new = [o for o in session.new if isinstance(o, model)]
    deleted = [o for o in session.deleted if isinstance(o, model)]
    changed = [o for o in session.dirty if isinstance(o, model) and session.is_modified(o)]
    if not (new or deleted or changed) or rbac.resolve_context() is SYSTEM:
        return
    if changed:
        raise PermissionDenied("an attachment never changes: delete it and upload again",
                               resource=changed[0].resource, action="edit")
    going = {(r.name, record_key(o)) for o in session.deleted
             if (r := rbac.registry.for_model(type(o))) is not None}
    for row, operation in [*((o, "upload") for o in new), *((o, "delete") for o in deleted)]:
        if operation == "delete" and (row.resource, row.record_id) in going:
            continue
        parent = (parent_record(rbac, row.resource, row.record_id)
                  if row.resource in rbac.registry else None)
        if parent is None:
            raise PermissionDenied("the attachment's record is not visible",
                                   resource=row.resource, action="view")
        check(rbac, operation, row.resource, parent)
        if operation == "upload":
            row.workspace_id = workspace_of(rbac, row.resource, parent)


def delete_with_records(rbac: RBACProtocol, session: Session, flush_context: Any) -> None:
    """Delete the attachment rows of records this flush deleted; queue every deleted row's bytes."""
    model = rbac.models.Attachment
    gone: dict[str, list[str]] = {}
    for obj in session.deleted:
        if isinstance(obj, model):
            drop_on_commit(session, [obj.storage_key])
        elif (res := rbac.registry.for_model(type(obj))) is not None:
            gone.setdefault(res.name, []).append(record_key(obj))
    if not gone:
        return
    table = rbac.models.Attachment.__table__
    which = sa.or_(*(sa.and_(table.c.resource == name, table.c.record_id.in_(ids))
                     for name, ids in gone.items()))
    connection = session.connection()
    keys = list(connection.execute(sa.select(table.c.storage_key).where(which)).scalars())
    if keys:
        connection.execute(sa.delete(table).where(which))
        drop_on_commit(session, keys)


def on_workspace_purging(sender: Flask, *, workspace_id: int, session: Session,
                         **extra: Any) -> None:
    """Delete a purged workspace's attachment rows; its bytes go when the purge commits."""
    table = sender.extensions["rbac"].rbac.models.Attachment.__table__
    connection = session.connection()
    where = table.c.workspace_id == workspace_id
    keys = list(connection.execute(sa.select(table.c.storage_key).where(where)).scalars())
    connection.execute(sa.delete(table).where(where))
    drop_on_commit(session, keys)


def after_commit(session: Session) -> None:
    """Remove the bytes whose rows the committed transaction deleted."""
    session.info.pop(STORED, None)
    doomed = session.info.pop(DOOMED, set())
    if doomed and has_app_context():
        store = storage()
        for key in doomed:
            store.delete(key)


def after_rollback(session: Session) -> None:
    """Remove the bytes stored by the rolled-back transaction; keep those it meant to delete."""
    session.info.pop(DOOMED, None)
    stored = session.info.pop(STORED, set())
    if stored and has_app_context():
        store = storage()
        for key in stored:
            store.delete(key)
