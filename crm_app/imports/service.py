"""The demo's CSV import: stage a file, map its columns, preview, commit with progress.

The checks and the writing are the plugin's (``crm_rbac_plugin.imports``);
this module keeps the staged file between requests (:class:`.ImportJob`, one
per member and resource, found by the member in force and never by an id
from the request) and reports the progress of a running commit.

Progress is written to a small JSON file per member and resource
(``CRM_IMPORT_PROGRESS_DIR``, by default ``<instance>/imports``) rather than
to the database: the commit holds one open transaction until its last chunk,
and a progress row written beside it would either be rolled back with it or,
on SQLite, wait on its write lock. A file is read by whichever worker of the
host answers the poll.
"""

from __future__ import annotations

import collections
import json
import os
import tempfile
import unicodedata
from typing import Any

import sqlalchemy as sa
from flask import current_app

from crm_rbac_plugin import imports
from crm_rbac_plugin.errors import ValidationError
from crm_rbac_plugin.inputs import is_digits
from crm_rbac_plugin.policy import Access

from ..extensions import db
from ..models import User
from ..rbac_setup import rbac
from .fields import FIELDS
from .models import ImportJob


def fields_for(resource: str) -> tuple[imports.ImportField, ...]:
    """The importable fields of ``resource`` (LookupError for any other resource)."""
    return FIELDS[resource]


def mappable(resource: str) -> tuple[imports.ImportField, ...]:
    """The fields the member may map: those not hidden or read-only for them."""
    access = imports.importer(rbac, resource)
    blocked = access.unwritable(resource)
    return tuple(f for f in fields_for(resource) if f.name not in blocked)


def owners(access: Access) -> dict[str, Any]:
    """Lower-cased email -> user id of the active members of the member's workspace, and
    lower-cased name -> user id for each name only one of them bears.

    The names let the demo's own exports, whose Owner column names the owner
    as the pages do, import back; a name two members share matches neither
    (the email tells them apart). The plugin consults only the importer's own
    entries unless they hold ``manage`` (who may assign any member).
    """
    m = rbac.models
    rows = db.session.execute(
        sa.select(User.email, User.name, User.id)
        .join(m.Membership, m.Membership.user_id == User.id)
        .where(m.Membership.workspace_id == access.workspace_id,
               m.Membership.status == "active")).all()
    named = collections.Counter((name or "").strip().lower() for _, name, _ in rows)
    by_name = {name.strip().lower(): uid for _, name, uid in rows
               if name and named[name.strip().lower()] == 1}
    return {**by_name, **{email.lower(): uid for email, _, uid in rows}}


def staged(resource: str) -> ImportJob | None:
    """The member's staged import into ``resource``, if any."""
    access = imports.importer(rbac, resource)
    return db.session.scalar(sa.select(ImportJob).where(
        ImportJob.workspace_id == access.workspace_id, ImportJob.user_id == access.user_id,
        ImportJob.resource == resource))


def stage(resource: str, filename: str, data: bytes) -> ImportJob:
    """Check the file as CSV and keep it as the member's import into ``resource``.

    A new upload replaces the member's previous one; the columns are mapped
    to the fields whose name or label they carry.
    """
    access = imports.importer(rbac, resource)
    if any(unicodedata.category(char) == "Cc" for char in filename):
        # A NUL cannot be stored in PostgreSQL text, and no control character
        # belongs in a name shown on the page and in the audit trail.
        raise ValidationError("The file name holds control characters: rename the file.",
                              field="file")
    header, rows = read(data)
    job = staged(resource) or ImportJob(workspace_id=access.workspace_id,
                                        user_id=access.user_id, resource=resource)
    job.filename = os.path.basename(filename or "upload.csv")[:255]
    job.content = data.decode("utf-8-sig")
    job.rows = len(rows)
    job.mapping = imports.guess_mapping(header, mappable(resource))
    db.session.add(job)
    db.session.commit()
    clear_progress(resource)
    return job


def read(data: bytes) -> tuple[list[str], list[imports.CsvRow]]:
    """The file's header and rows, within ``RBAC_IMPORT_MAX_ROWS`` and ``..._MAX_COLUMNS``."""
    return imports.read_csv(data, max_rows=int(rbac.config("RBAC_IMPORT_MAX_ROWS")),
                            max_columns=int(rbac.config("RBAC_IMPORT_MAX_COLUMNS")))


def parsed(job: ImportJob) -> tuple[list[str], list[imports.CsvRow]]:
    """The staged file's header and rows (it was checked when staged)."""
    return read(job.content.encode("utf-8"))


def remap(job: ImportJob, form: Any) -> None:
    """Save the mapping posted as ``map-<field>`` = column position ("" leaves it out).

    A position that is not a column of the file, or a field the member may
    not map, is a 400 naming the field (``ValidationError``).
    """
    header, _ = parsed(job)
    allowed = {f.name for f in mappable(job.resource)}
    mapping: dict[str, int] = {}
    for key, value in form.items():
        if not key.startswith("map-") or value == "":
            continue
        name = key[4:]
        if name not in allowed:
            raise ValidationError(f"{name} cannot be imported by you.", field=name)
        if not is_digits(value) or int(value) >= len(header):
            raise ValidationError(f"{name}: no such column.", field=name)
        mapping[name] = int(value)
    job.mapping = mapping
    db.session.commit()


def plan(job: ImportJob) -> imports.Plan:
    """Check every row of the staged file with its mapping, as the member."""
    access = imports.importer(rbac, job.resource)
    _, rows = parsed(job)
    return imports.prepare(rbac, job.resource, fields_for(job.resource), rows,
                           {k: int(v) for k, v in job.mapping.items()}, owners=owners(access))


def run(job: ImportJob) -> int:
    """Import the staged file, all rows or none, reporting progress; return the count.

    The staged job is deleted in the same transaction, so a failed import
    leaves it (and nothing else) behind to fix and retry. Its DELETE comes
    first and must find the row: of two commits of one upload (a second tab,
    a retried post), the second waits for the first's transaction, then
    finds no job and imports nothing ("Upload a file first.", a 409).
    """
    resource, filename = job.resource, job.filename
    checked = plan(job)
    claimed = db.session.execute(sa.delete(ImportJob).where(ImportJob.id == job.id)
                                 .execution_options(synchronize_session=False))
    if claimed.rowcount != 1:
        raise ValidationError("Upload a file first.", field="file")
    db.session.expunge(job)
    write_progress(resource, "running", 0, checked.total)
    try:
        count = imports.commit(
            rbac, checked, target=f"{checked.total} {resource} from {filename}",
            progress=lambda done, total: write_progress(resource, "running", done, total))
    except Exception as exc:
        write_progress(resource, "failed", 0, checked.total, str(exc))
        raise
    write_progress(resource, "done", count, count)
    return count


# -- progress --------------------------------------------------------------------------

def _progress_path(resource: str) -> str:
    access = imports.importer(rbac, resource)
    folder = current_app.config.get("CRM_IMPORT_PROGRESS_DIR") or os.path.join(
        current_app.instance_path, "imports")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"{access.workspace_id}-{access.user_id}-{resource}.json")


def write_progress(resource: str, state: str, done: int, total: int, message: str = "") -> None:
    """Replace the member's progress file atomically (a poll never reads half of it)."""
    path = _progress_path(resource)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(path), suffix=".tmp")
    with os.fdopen(fd, "w") as out:
        json.dump({"state": state, "done": done, "total": total, "message": message}, out)
    os.replace(tmp, path)


def read_progress(resource: str) -> dict[str, Any]:
    """The member's progress: state (idle, running, done, failed), done, total, message."""
    try:
        with open(_progress_path(resource)) as f:
            data = json.load(f)
    except (OSError, ValueError):
        return {"state": "idle", "done": 0, "total": 0, "message": ""}
    total = int(data.get("total") or 0)
    data["percent"] = round(100 * int(data.get("done") or 0) / total) if total else 0
    return data  # type: ignore[no-any-return]


def clear_progress(resource: str) -> None:
    """Forget the member's last progress (a new file was staged)."""
    try:
        os.remove(_progress_path(resource))
    except FileNotFoundError:
        pass
