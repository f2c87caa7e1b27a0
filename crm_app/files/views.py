"""Upload, download and delete attachments of any CRM record.

Every route is a thin wrapper over :mod:`crm_rbac_plugin.files`: the record
is loaded through the query filter (:func:`crm_rbac_plugin.get_or_404` for
uploads, :func:`crm_rbac_plugin.files.attachment_or_404` for a file), so a
record outside the member's view is a 404 for its files too, and the
plugin's rule decides the rest (upload: edit; download: view; delete: edit
and delete). The flush guard checks every attachment row again.

The upload body is capped before anything reads it (the CSRF check parses
the form first, :mod:`crm_app.bodies`): ``RBAC_FILES_MAX_BYTES`` plus room
for the form's other fields, beyond which the request is a 413.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, Flask, Response, flash, jsonify, redirect, request, url_for
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from crm_rbac_plugin import Decision, PermissionDenied, get_or_404
from crm_rbac_plugin import files as rbac_files
from crm_rbac_plugin.config import setting
from crm_rbac_plugin.decorators import wants_json
from crm_rbac_plugin.identity import signed_in_user

from .. import bodies, errors
from ..crm.resources import CONFIGS, config_for
from ..crm.views import detail_view
from ..extensions import db
from ..rbac_setup import rbac

#: The resources whose records take attachments: the CRM's own (a module's resource
#: that reuses the CRM pages, such as invoices, has no attachments panel).
RESOURCES = tuple(cfg.name for cfg in CONFIGS)

bp = Blueprint("files", __name__)


@bp.before_request
def signed_in_only() -> None:
    """Anonymous visitors go to the login page (JSON clients get a 401)."""
    if signed_in_user() is None:
        rbac.refuse(Decision(False, "not logged in"), 401)


def attachments_panel(resource: str, record: Any) -> list[Any] | None:
    """The record's files for its page, or None when the resource takes none or the
    member may not download them."""
    if resource not in RESOURCES or not rbac_files.may(rbac, "download", resource, record):
        return None
    return rbac_files.attachments_of(rbac, resource, record)


def rejected(resource: str, record_id: int, error: rbac_files.FileRejected) -> Any:
    """The refusal of an upload: JSON naming the field, or the record page with the message."""
    db.session.rollback()
    if wants_json():
        return jsonify(error="invalid", field=error.field, message=error.message), error.status
    flash(f"{error.field}: {error.message}", "error")
    record = get_or_404(resource, record_id, "view")
    return detail_view(config_for(resource), record), error.status


@bp.errorhandler(413)
def too_large(error: Any) -> Any:
    """A body over the file limit, found before the view reads it (the body cap, or
    the CSRF check that parses the form first): answered as the view answers a file
    over the limit, JSON naming the field or the record page with the message."""
    db.session.rollback()
    limit = int(setting("RBAC_FILES_MAX_BYTES"))
    refusal = rbac_files.FileRejected(f"The file is larger than {limit} bytes.", status=413)
    args = request.view_args or {}
    if wants_json() or request.endpoint != "files.upload":
        return jsonify(error="invalid", field=refusal.field, message=refusal.message), 413
    try:
        return rejected(args["resource"], args["record_id"], refusal)
    except HTTPException:  # a record they may not see: the plain answer, and no more
        return errors.too_large(RequestEntityTooLarge(refusal.message))


@bp.post(f"/<any({', '.join(RESOURCES)}):resource>/<int:record_id>/attachments")
def upload(resource: str, record_id: int) -> Any:
    """Attach the posted ``file`` to the record (needs edit on it).

    Without ``edit`` on the resource at all the answer is 403, as for the
    record's own edit page; then the record loads through the filter (404).
    """
    if not rbac.can("edit", resource):
        rbac.refuse(rbac.explain("edit", resource), 403)
    record = get_or_404(resource, record_id, "edit")
    upload_file = request.files.get("file")
    try:
        row = rbac_files.attach(rbac, resource, record,
                                upload_file.stream if upload_file else None,
                                upload_file.filename if upload_file else None)
        db.session.commit()
    except rbac_files.FileRejected as error:
        return rejected(resource, record.id, error)
    except PermissionDenied as refused:
        db.session.rollback()
        rbac.refuse(Decision(False, refused.message), 403)
    if wants_json():
        return jsonify(id=row.id, filename=row.filename, content_type=row.content_type,
                       size=row.size), 201
    flash(f"Attached “{row.filename}”.", "success")
    return redirect(url_for(f"{resource}.detail", id=record.id))


@bp.get("/attachments/<int:attachment_id>")
def download(attachment_id: int) -> Response:
    """Send the file (needs view on its record; a shared record needs view shared)."""
    attachment, parent = rbac_files.attachment_or_404(rbac, attachment_id, "download")
    return rbac_files.send(rbac, attachment, parent)


@bp.post("/attachments/<int:attachment_id>/delete")
def delete(attachment_id: int) -> Any:
    """Delete the file (needs edit and delete on its record); its bytes go at commit."""
    attachment, parent = rbac_files.attachment_or_404(rbac, attachment_id, "delete")
    resource, name = attachment.resource, attachment.filename
    rbac_files.remove(rbac, attachment, parent)
    db.session.commit()
    if wants_json():
        return jsonify(deleted=attachment_id)
    flash(f"Deleted “{name}”.", "success")
    return redirect(url_for(f"{resource}.detail", id=parent.id))


def init_app(app: Flask) -> None:
    """Register the routes, the body cap (ahead of the CSRF check) and the panel helper."""
    app.register_blueprint(bp)
    bodies.upload_limit("files.upload", lambda: setting("RBAC_FILES_MAX_BYTES"))
    app.context_processor(lambda: {"attachments_panel": attachments_panel})
