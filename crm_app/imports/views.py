"""The import pages: upload a CSV, map its columns, preview the rows, import them.

Every route needs ``import`` and ``create`` on the resource
(``crm_rbac_plugin.imports.importer`` refuses anyone else with a 403), reads
only the member's own staged file, and is CSRF-protected like every form of
the demo. ``commit`` answers JSON to the page's script (which polls
``progress`` meanwhile) and redirects a plain form post.
"""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, flash, jsonify, redirect, render_template, request, url_for
from werkzeug.exceptions import RequestEntityTooLarge

from crm_rbac_plugin import imports
from crm_rbac_plugin.errors import ValidationError

from .. import errors
from ..bodies import FORM_FRAMING
from ..extensions import db
from ..rbac_setup import rbac
from . import service
from .fields import FIELDS

bp = Blueprint("imports", __name__, url_prefix="/imports", template_folder="templates",
               static_folder="static", static_url_path="/static")

#: Rows with errors listed on the preview (the count covers them all).
SHOWN_ERRORS = 100
#: Rows shown as a sample of what will be imported.
SAMPLE_ROWS = 10


def _resource(resource: str) -> str:
    """404 for anything but an importable resource; 403 without import and create."""
    if resource not in FIELDS:
        abort(404)
    imports.importer(rbac, resource)
    return resource


def _wants_json() -> bool:
    return request.accept_mimetypes.best == "application/json"


def _too_large(limit: int) -> RequestEntityTooLarge:
    return RequestEntityTooLarge(
        f"The file is larger than the import limit of {limit // 1024:,} KiB: "
        "split it into smaller files.")


def _upload_bytes() -> tuple[str, bytes]:
    """The uploaded file, refused with 413 beyond ``RBAC_IMPORT_MAX_BYTES``.

    The declared length is checked before the body is parsed, and the bytes
    read are checked again (a chunked upload declares none).
    """
    limit = int(rbac.config("RBAC_IMPORT_MAX_BYTES"))
    if request.content_length is not None and request.content_length > limit + FORM_FRAMING:
        raise _too_large(limit)
    upload = request.files.get("file")
    if upload is None or not upload.filename:
        raise ValidationError("Choose a CSV file to upload.", field="file")
    data = upload.stream.read(limit + 1)
    if len(data) > limit:
        raise _too_large(limit)
    return upload.filename, data


def page(resource: str, status: int = 200, error: ValidationError | None = None) -> Any:
    """The import page: the upload form, and the mapping and preview of a staged file."""
    job = service.staged(resource)
    context: dict[str, Any] = {"resource": resource, "job": job, "error": error,
                               "label": resource.title(), "fields": service.mappable(resource)}
    if job is not None:
        header, rows = service.parsed(job)
        checked = service.plan(job)
        context.update(header=header, sample=rows[:SAMPLE_ROWS], plan=checked,
                       errors=checked.errors[:SHOWN_ERRORS],
                       may_manage=rbac.can("manage", resource))
    return render_template("imports/import.html", **context), status


@bp.errorhandler(413)
def too_large(error: RequestEntityTooLarge) -> Any:
    """A body over the import limit, however it was found: by the view, by the body
    cap (a chunked upload) or by the CSRF check, which parses the form first.

    JSON clients get the field and the message; a page, the import page with
    the message on the file field.
    """
    db.session.rollback()
    message = str(_too_large(int(rbac.config("RBAC_IMPORT_MAX_BYTES"))).description)
    resource = (request.view_args or {}).get("resource", "")
    if resource not in FIELDS or not all(
            rbac.can(action, resource) for action in (imports.IMPORT, "create")):
        return errors.too_large(RequestEntityTooLarge(message))  # no import page of theirs
    if _wants_json():
        return jsonify(error="invalid", field="file", message=message), 413
    return page(resource, 413, ValidationError(message, field="file"))


@bp.get("/<resource>")
def show(resource: str) -> Any:
    return page(_resource(resource))


@bp.post("/<resource>")
def upload(resource: str) -> Any:
    _resource(resource)
    try:
        filename, data = _upload_bytes()
        job = service.stage(resource, filename, data)
    except RequestEntityTooLarge as exc:
        db.session.rollback()
        return page(resource, 413, ValidationError(str(exc.description), field="file"))
    except ValidationError as exc:
        db.session.rollback()
        return page(resource, 400, exc)
    flash(f"{job.filename}: {job.rows:,} rows staged. Check the mapping and the preview.",
          "success")
    return redirect(url_for("imports.show", resource=resource))


@bp.post("/<resource>/mapping")
def mapping(resource: str) -> Any:
    job = service.staged(_resource(resource))
    if job is None:
        return page(resource, 409, ValidationError("Upload a file first.", field="file"))
    try:
        service.remap(job, request.form)
    except ValidationError as exc:
        db.session.rollback()
        return page(resource, 400, exc)
    return redirect(url_for("imports.show", resource=resource))


@bp.post("/<resource>/commit")
def commit(resource: str) -> Any:
    job = service.staged(_resource(resource))
    try:
        if job is None:
            raise ValidationError("Upload a file first.", field="file")
        count = service.run(job)
    except ValidationError as exc:
        db.session.rollback()
        if _wants_json():
            return jsonify(error=exc.message, field=exc.field), 409
        return page(resource, 409, exc)
    message = f"Imported {count:,} {resource}."
    flash(message, "success")  # shown by the list page, whichever way the member got there
    if _wants_json():
        return jsonify(imported=count, message=message,
                       location=url_for(f"{resource}.index"))
    return redirect(url_for(f"{resource}.index"))


@bp.get("/<resource>/progress")
def progress(resource: str) -> Any:
    """The running import's progress as JSON: state, done, total, percent, message."""
    return jsonify(service.read_progress(_resource(resource)))


@bp.post("/<resource>/discard")
def discard(resource: str) -> Any:
    job = service.staged(_resource(resource))
    if job is not None:
        db.session.delete(job)
        db.session.commit()
    flash("The staged file was discarded.", "success")
    return redirect(url_for("imports.show", resource=resource))
