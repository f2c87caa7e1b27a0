"""The full export an Owner downloads before deleting a workspace: a zip of JSON and CSV.

The zip holds ``workspace.json`` (every exported table, rows as objects) and
one ``<table>.csv`` per table, every cell through :mod:`..csvsafe`. It covers
the host's workspace-scoped records (the registry's protected models), the
plugin's rows that carry the workspace's id, the rows one step below them
(grants, assignments, agreement permissions ...), and the workspace's audit
trail. It is an export like any other for the workspace's approval policy:
over the export threshold (counted in rows of every table) it waits for an
approver (:func:`..gate.require`, ``via="workspace"``), so no Owner takes
every record out alone. Secrets are left out: a column whose name says hash, secret, nonce,
token or password is never exported. Binary values (a file kept for its
download, a host's blob) are exported as base64 text, which JSON and CSV
hold. The bytes of every attachment go in too, as ``files/<id>-<name>``
(read through the storage interface, :mod:`..files.storage`): the purge deletes
them, and this export is the copy offered before it; an attachment whose bytes
are gone from the storage is listed in ``workspace.json`` under
``missing_files`` instead. Only an Owner exports, and the export is audited
(``workspace.exported``).
"""

from __future__ import annotations

import base64
import io
import json
import posixpath
import shutil
import zipfile
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from flask import has_request_context

from .. import csvsafe, gate
from ..audit.events import jsonable, real_or_acting, record
from ..files.storage import storage
from ..loader import BYPASS
from ..policy import Access
from .ownership import require_owner
from .purge import _ordered_tables

if TYPE_CHECKING:
    from ..interface import RBACProtocol

#: The approval payload's ``via`` of the workspace export (its producer: ``approvals.setup``).
WORKSPACE_EXPORT = "workspace"
#: Column names holding a secret contain one of these: such columns are never exported.
SECRET_WORDS = ("hash", "secret", "nonce", "token", "password")


def _columns(table: sa.Table) -> list[sa.Column[Any]]:
    return [c for c in table.columns if not any(w in c.name.lower() for w in SECRET_WORDS)]


def _selections(rbac: RBACProtocol, ws_id: int) -> list[tuple[sa.Table, Any]]:
    """(table, select of its rows of the workspace) for every exported table."""
    host, plugin = _ordered_tables(rbac)
    keyed = [*reversed(host), *reversed(plugin)]
    picked = {t.fullname for t, _ in keyed}
    out = [(t, sa.select(*_columns(t)).where(col == ws_id)) for t, col in keyed]
    parents = {t.fullname: (t, col) for t, col in plugin}
    for table in rbac.db.metadata.sorted_tables:
        if table.fullname in picked or not table.name.startswith("rbac_"):
            continue
        for fk in table.foreign_keys:
            parent = parents.get(fk.column.table.fullname)
            if parent is not None and fk.parent.table is table:
                ids = sa.select(fk.column).where(parent[1] == ws_id)
                out.append((table, sa.select(*_columns(table)).where(fk.parent.in_(ids))))
                picked.add(table.fullname)
                break
    audit = rbac.models.AuditEvent.__table__
    out.append((audit, sa.select(*_columns(audit)).where(audit.c.workspace_id == ws_id)))
    return out


def _cell(value: Any) -> Any:
    """A column value as JSON holds it; bytes as base64 text."""
    if isinstance(value, (bytes, bytearray, memoryview)):
        return base64.b64encode(bytes(value)).decode("ascii")
    return jsonable(value)


def _csv(columns: list[str], rows: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    out = csvsafe.writer(buffer)
    out.writerow(columns)
    for row in rows:
        out.writerow([json.dumps(v) if isinstance(v, (dict, list)) else v
                      for v in (row[c] for c in columns)])
    return buffer.getvalue()


def _write_files(archive: zipfile.ZipFile, attachments: list[dict[str, Any]]) -> list[int]:
    """Add each attachment's bytes as ``files/<id>-<name>``; return the ids of those
    whose bytes the storage no longer holds."""
    missing: list[int] = []
    store = storage()
    for row in sorted(attachments, key=lambda r: r["id"]):
        name = posixpath.basename(str(row["filename"]).replace("\\", "/")) or "file"
        try:
            source = store.open(row["storage_key"])
        except FileNotFoundError:
            missing.append(row["id"])
            continue
        with source, archive.open(f"files/{row['id']}-{name}", "w") as target:
            shutil.copyfileobj(source, target)
    return missing


def export_zip(rbac: RBACProtocol, actor: Access | None) -> tuple[str, bytes]:
    """Return ``(file name, zip bytes)`` of the actor's workspace (Owners only).

    Audited as ``workspace.exported``; the caller commits. Raises
    :class:`..gate.ApprovalPending` (or ``ApprovalRequired`` in a GET) when
    the workspace's approval policy makes an export of that many rows wait.
    """
    actor = require_owner(actor)
    ws = rbac.db.session.get(rbac.models.Workspace, actor.workspace_id)
    tables: dict[str, list[dict[str, Any]]] = {}
    columns: dict[str, list[str]] = {}
    with rbac.system():
        for table, stmt in _selections(rbac, ws.id):
            result = rbac.db.session.execute(stmt, execution_options=BYPASS)
            names = list(result.keys())
            columns[table.name] = names
            tables[table.name] = [{n: _cell(v) for n, v in zip(names, row, strict=True)}
                                  for row in result]
    total = sum(len(r) for r in tables.values())
    gate.require(rbac, actor, "export", {"resource": "settings", "via": WORKSPACE_EXPORT},
                 count=total, summary=f"Export the whole workspace {ws.name} ({total} rows)")
    document = {"workspace": {"id": ws.id, "name": ws.name, "slug": ws.slug, "plan": ws.plan,
                              "created_at": jsonable(ws.created_at)},
                "tables": tables}
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        document["missing_files"] = _write_files(
            archive, tables.get(rbac.models.Attachment.__tablename__, []))
        archive.writestr("workspace.json", json.dumps(document, indent=1, sort_keys=True))
        for name, rows in tables.items():
            archive.writestr(f"csv/{name}.csv", _csv(columns[name], rows))
    # The person who downloads it: the real Owner while they view as another one.
    who = (real_or_acting() if has_request_context() else None) or actor
    record(rbac, "workspace.exported", workspace_id=ws.id, resource="settings", target=ws.name,
           actor_ids=(who.user_id, who.membership_id), rows=total)
    return f"{ws.slug}-export.zip", buffer.getvalue()
