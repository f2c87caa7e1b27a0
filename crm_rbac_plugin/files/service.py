"""The attachment operations a host's views (or jobs, or the CLI) call.

Each takes the extension and a record or attachment already loaded through
the query filter, checks :mod:`.access` again (a caller that forgot its
decorator still cannot write), and leaves the commit to the caller. The flush
guard of :mod:`.cleanup` checks every inserted or deleted row once more.

Bytes and rows stay consistent through the transaction: :func:`attach`
stores the bytes after the row's flush passed the guard and drops them if
the transaction rolls back; :func:`remove` drops them only once the
deletion commits (:mod:`.cleanup`).
"""

from __future__ import annotations

import secrets
from typing import IO, TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import Response, abort, current_app, send_file

from ..identity import signed_in_user
from . import cleanup
from .access import check, record_key, workspace_of
from .content import CheckedUpload, checked_upload
from .storage import storage

if TYPE_CHECKING:
    from ..interface import RBACProtocol


def attachments_of(rbac: RBACProtocol, resource: str, record: Any) -> list[Any]:
    """The files of ``record`` (loaded through the filter, so visible), newest first.

    Refuses with :class:`PermissionDenied` unless the member may download them.
    """
    check(rbac, "download", resource, record)
    model = rbac.models.Attachment
    return list(rbac.db.session.scalars(
        sa.select(model).where(model.resource == resource, model.record_id == record_key(record))
        .order_by(model.created_at.desc(), model.id.desc())))


def attach(rbac: RBACProtocol, resource: str, record: Any, stream: IO[bytes] | None,
           filename: str | None, *, field: str = "file") -> Any:
    """Attach an upload to ``record``: checked, stored under a new key, audited.

    Raises :class:`.content.FileRejected` (400 naming ``field``, 413 when too
    large) or :class:`PermissionDenied` (no ``edit`` on the record).
    """
    check(rbac, "upload", resource, record)
    upload: CheckedUpload = checked_upload(stream, filename, field=field)
    access = rbac.current_access()
    row = rbac.models.Attachment(
        workspace_id=workspace_of(rbac, resource, record),
        resource=resource, record_id=record_key(record), storage_key=secrets.token_hex(16),
        filename=upload.filename, content_type=upload.content_type, size=len(upload.data),
        uploaded_by_membership_id=getattr(access, "membership_id", None),
        uploaded_by_name=_actor_name())
    session = rbac.db.session
    session.add(row)
    session.flush()  # the guard of .cleanup judges the row before any byte is stored
    storage().put(row.storage_key, upload.data)
    cleanup.drop_on_rollback(session, row.storage_key)
    rbac.audit("attachment.uploaded", workspace_id=row.workspace_id, resource=resource,
               target=f"{upload.filename} on {resource} #{row.record_id}",
               size=row.size, content_type=row.content_type)
    return row


def remove(rbac: RBACProtocol, attachment: Any, parent: Any) -> None:
    """Delete an attachment (needs ``edit`` and ``delete`` on ``parent``); bytes go at commit."""
    check(rbac, "delete", attachment.resource, parent)
    rbac.db.session.delete(attachment)
    rbac.audit("attachment.deleted", workspace_id=attachment.workspace_id,
               resource=attachment.resource,
               target=f"{attachment.filename} on {attachment.resource} #{attachment.record_id}")


def send(rbac: RBACProtocol, attachment: Any, parent: Any) -> Response:
    """The file as a download: ``attachment`` disposition, sniffed type, ``nosniff``;
    audited as ``attachment.downloaded``.

    Bytes missing from the storage are a 404 (logged), never a 500.

    Never inline: a browser saves it instead of rendering it on the site's
    origin, and ``X-Content-Type-Options: nosniff`` stops it from guessing
    another type than the one the bytes were checked against.
    """
    check(rbac, "download", attachment.resource, parent)
    try:
        stream = storage().open(attachment.storage_key)
    except FileNotFoundError:
        # The row outlived its bytes (a storage restored from an older backup):
        # say the file is gone rather than fail.
        current_app.logger.warning("attachment %s: no bytes under its storage key", attachment.id)
        abort(404)
    response = send_file(stream, mimetype=attachment.content_type,
                         as_attachment=True, download_name=attachment.filename,
                         max_age=0, conditional=False, etag=False)
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Cache-Control"] = "private, no-store"
    # Who took a copy of a file out is evidence, as an export is (001: "track
    # sensitive data access").
    rbac.audit("attachment.downloaded", workspace_id=attachment.workspace_id,
               resource=attachment.resource,
               target=f"{attachment.filename} on {attachment.resource} #{attachment.record_id}",
               size=attachment.size)
    rbac.db.session.commit()
    return response


def _actor_name() -> str:
    """The uploader's name as shown next to the file (kept if they leave)."""
    user = signed_in_user()
    return str(getattr(user, "name", "") or getattr(user, "email", "") or "")[:255]
